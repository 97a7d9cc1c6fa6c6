//! What a file is: the type its extension promises, and whether its bytes keep that promise.
//! The stored content type is always the server's, never the one the client declared.

/// How a turn uses a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// UTF-8 text: sent to the model as context.
    Text,
    /// Sent as an image part to providers that take them.
    Image,
    /// Kept and downloadable; not sent to the model.
    Document,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub content_type: &'static str,
    pub class: Class,
}

const fn text(content_type: &'static str) -> Option<Kind> {
    Some(Kind {
        content_type,
        class: Class::Text,
    })
}

/// The kind an extension stands for; `None` for one the server does not know.
pub fn of_extension(ext: &str) -> Option<Kind> {
    let image = |content_type| {
        Some(Kind {
            content_type,
            class: Class::Image,
        })
    };
    match ext {
        "txt" | "log" | "toml" | "ts" | "tsx" | "jsx" | "py" | "rs" | "go" | "java" | "kt"
        | "swift" | "c" | "h" | "cpp" | "hpp" | "cs" | "rb" | "php" | "sh" | "sql" => {
            text("text/plain")
        }
        "md" => text("text/markdown"),
        "json" => text("application/json"),
        "yaml" | "yml" => text("application/yaml"),
        "csv" => text("text/csv"),
        "xml" => text("application/xml"),
        "html" => text("text/html"),
        "css" => text("text/css"),
        "js" => text("text/javascript"),
        "diff" | "patch" => text("text/x-diff"),
        "png" => image("image/png"),
        "jpg" | "jpeg" => image("image/jpeg"),
        "gif" => image("image/gif"),
        "webp" => image("image/webp"),
        "pdf" => Some(Kind {
            content_type: "application/pdf",
            class: Class::Document,
        }),
        _ => None,
    }
}

/// What the first bytes and a full scan found.
pub struct Evidence<'a> {
    pub head: &'a [u8],
    /// The whole file is valid UTF-8 with no NUL.
    pub text: bool,
}

/// Whether the bytes are what `kind` says; the reason when not.
pub fn check(kind: Kind, ext: &str, e: &Evidence<'_>) -> Result<(), String> {
    let found = infer::get(e.head).map(|t| t.mime_type());
    // `infer` also knows some text formats (HTML, XML, shebang scripts): those are text.
    let binary = found.filter(|m| !m.starts_with("text/"));
    match kind.class {
        Class::Text if e.text && binary.is_none() => Ok(()),
        Class::Text => Err(format!(
            "a .{ext} file must be UTF-8 text{}",
            found.map_or(String::new(), |f| format!("; this one is {f}"))
        )),
        Class::Image | Class::Document if found == Some(kind.content_type) => Ok(()),
        Class::Image | Class::Document => Err(format!(
            "a .{ext} file must be {}; this one is {}",
            kind.content_type,
            found.unwrap_or("something else")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const ELF: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0\x01\0\0\0\x40\x10\x40\0\0\0\0\0\x40\0\0\0\0\0\0\0\xe8\x19\0\0\0\0\0\0\0\0\0\0\x40\08\0\x0d\0\x40\0\x1f\0\x1e\0";

    #[test]
    fn an_elf_is_neither_an_image_nor_text() {
        let png = of_extension("png").unwrap();
        let ev = |head, text| Evidence { head, text };
        assert!(check(png, "png", &ev(PNG, false)).is_ok());
        let e = check(png, "png", &ev(ELF, false)).unwrap_err();
        assert!(e.contains("x-executable"), "{e}");
        let txt = of_extension("txt").unwrap();
        assert!(check(txt, "txt", &ev(b"hello", true)).is_ok());
        assert!(check(txt, "txt", &ev(ELF, false)).is_err());
        assert!(check(txt, "txt", &ev(PNG, true)).is_err());
        for text in [
            &b"<!DOCTYPE html><p>hi"[..],
            b"<?xml version=\"1.0\"?><a/>",
            b"#!/bin/sh\necho hi\n",
        ] {
            assert!(
                check(txt, "txt", &ev(text, true)).is_ok(),
                "{:?}",
                std::str::from_utf8(text)
            );
        }
    }
}
