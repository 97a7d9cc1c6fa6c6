"""The official `openai` Python SDK against a running switchyard.

Run by tests/api/sdk.rs with SWITCHYARD_BASE_URL (…/v1) and SWITCHYARD_API_KEY set; the
models are the routes tests/api/completions.rs configures against the test upstream.
"""

import json
import os
import unittest

import openai
from openai import OpenAI

BASE = os.environ["SWITCHYARD_BASE_URL"]
KEY = os.environ["SWITCHYARD_API_KEY"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        },
    }
]
ASK = [{"role": "user", "content": "Say hello"}]


def client(**kw):
    # No SDK retries: each error must surface as its own exception, at once.
    return OpenAI(base_url=BASE, api_key=KEY, max_retries=0, timeout=20, **kw)


class Completions(unittest.TestCase):
    def test_models_list(self):
        ids = [m.id for m in client().models.list()]
        self.assertIn("echo", ids)
        self.assertIn("oa-text", ids)

    def test_models_retrieve(self):
        m = client().models.retrieve("echo")
        self.assertEqual((m.id, m.object), ("echo", "model"))
        with self.assertRaises(openai.NotFoundError) as e:
            client().models.retrieve("no-such-model")
        self.assertEqual(e.exception.code, "model_not_found")

    def test_non_streaming_echo(self):
        r = client().chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "hello there sdk"}]
        )
        self.assertEqual(r.object, "chat.completion")
        self.assertEqual(r.choices[0].message.content, "hello there sdk")
        self.assertEqual(r.choices[0].message.role, "assistant")
        self.assertEqual(r.choices[0].finish_reason, "stop")
        self.assertEqual(r.usage.completion_tokens, 3)
        self.assertEqual(r.usage.total_tokens, r.usage.prompt_tokens + 3)

    def test_streaming_with_include_usage(self):
        stream = client().chat.completions.create(
            model="oa-text",
            messages=ASK,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        self.assertEqual(text, "Hello! How can I help — ünïcödé?")
        self.assertEqual(len({c.id for c in chunks}), 1)
        self.assertEqual(len({c.created for c in chunks}), 1)
        last = chunks[-1]
        self.assertEqual(last.choices, [])
        self.assertEqual(last.usage.prompt_tokens, 19)
        self.assertEqual(last.usage.completion_tokens, 10)
        self.assertTrue(all(c.usage is None for c in chunks[:-1]))
        self.assertEqual(chunks[-2].choices[0].finish_reason, "stop")

    def test_streaming_tool_call_arguments(self):
        for model, name, args in [
            ("oa-tools", "get_weather", {"location": "Paris, France"}),
            ("an-tools", "get_weather", {"location": "San Francisco, CA"}),
        ]:
            stream = client().chat.completions.create(
                model=model, messages=ASK, tools=TOOLS, tool_choice="auto", stream=True
            )
            calls = {}
            finish = None
            for c in stream:
                for tc in c.choices[0].delta.tool_calls or []:
                    entry = calls.setdefault(tc.index, {"id": None, "name": None, "args": ""})
                    if tc.id:
                        entry["id"] = tc.id
                    if tc.function and tc.function.name:
                        entry["name"] = tc.function.name
                    if tc.function and tc.function.arguments:
                        entry["args"] += tc.function.arguments
                finish = c.choices[0].finish_reason or finish
            self.assertEqual(finish, "tool_calls", model)
            self.assertEqual(calls[0]["name"], name, model)
            self.assertTrue(calls[0]["id"], model)
            self.assertEqual(json.loads(calls[0]["args"]), args, model)

    def test_non_streaming_tool_calls_and_tool_messages(self):
        r = client().chat.completions.create(model="oa-tools", messages=ASK, tools=TOOLS)
        msg = r.choices[0].message
        self.assertEqual(r.choices[0].finish_reason, "tool_calls")
        self.assertEqual([c.function.name for c in msg.tool_calls], ["get_weather", "get_time"])
        # Send the calls back with their results: tool and tool_calls roles are accepted.
        follow = ASK + [
            msg.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "18C"},
            {"role": "tool", "tool_call_id": msg.tool_calls[1].id, "content": "12:00"},
        ]
        r = client().chat.completions.create(model="oa-text", messages=follow, tools=TOOLS)
        self.assertEqual(r.choices[0].message.content, "Hello! How can I help — ünïcödé?")

    def test_error_types_raise_the_matching_exceptions(self):
        with self.assertRaises(openai.AuthenticationError):
            OpenAI(base_url=BASE, api_key="sk-sy-wrong", max_retries=0).chat.completions.create(
                model="echo", messages=ASK
            )
        with self.assertRaises(openai.NotFoundError) as e:
            client().chat.completions.create(model="no-such-model", messages=ASK)
        self.assertEqual(e.exception.code, "model_not_found")
        self.assertEqual(e.exception.param, "model")
        with self.assertRaises(openai.BadRequestError) as e:
            client().chat.completions.create(model="echo", messages=ASK, n=2)
        self.assertEqual(e.exception.param, "n")
        with self.assertRaises(openai.RateLimitError):
            client().chat.completions.create(model="oa-429", messages=ASK)
        with self.assertRaises(openai.InternalServerError) as e:
            client().chat.completions.create(model="oa-500", messages=ASK)
        self.assertEqual(e.exception.status_code, 502)
        with self.assertRaises(openai.InternalServerError) as e:
            client().chat.completions.create(model="oa-hang", messages=ASK, stream=True)
        self.assertEqual(e.exception.status_code, 504)

    def test_midstream_error_raises_while_iterating(self):
        stream = client().chat.completions.create(model="oa-midfail", messages=ASK, stream=True)
        got = ""
        with self.assertRaises(openai.APIError):
            for c in stream:
                if c.choices:
                    got += c.choices[0].delta.content or ""
        self.assertEqual(got, "Partial answer")


if __name__ == "__main__":
    unittest.main(verbosity=2)
