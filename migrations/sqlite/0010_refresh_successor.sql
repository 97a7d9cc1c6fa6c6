-- The token that replaced a used one, so a replay of it within the reuse grace window
-- (two tabs refreshing at once) gets that same successor instead of revoking the family.
ALTER TABLE refresh_tokens ADD COLUMN replaced_by BLOB;
