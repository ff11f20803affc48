"""Checks `latam serve` with the official `openai` Python client.

Usage: python scripts/openai_client_check.py http://127.0.0.1:8080/v1
Exits non-zero with a message on the first answer that the client cannot use.
"""

import sys

import openai

base = sys.argv[1]
client = openai.OpenAI(base_url=base, api_key="unused", max_retries=0)

models = client.models.list().data
assert len(models) == 1, models
name = models[0].id
print(f"model: {name}")
assert client.models.retrieve(name).id == name
try:
    client.models.retrieve("gpt-4o")
    sys.exit("models.retrieve of an unknown id succeeded")
except openai.NotFoundError as e:
    assert e.param == "model" and e.code == "model_not_found", e.body
print("models.retrieve: the model, and 404 for another id")

chat = client.chat.completions.create(
    model=name,
    messages=[{"role": "user", "content": "¿Cuál es la capital de Chile?"}],
    max_tokens=24,
    temperature=0,
    logprobs=True,
    top_logprobs=2,
    # Both runs start from an empty cache: with the prefix of an earlier request, the prompt's
    # last token would run alone rather than in a batch, and rounding may differ (as in
    # llama.cpp, whose `cache_prompt` this is).
    extra_body={"cache_prompt": False},
)
answer = chat.choices[0].message.content
assert answer, chat
assert chat.usage.completion_tokens > 0, chat.usage
assert len(chat.choices[0].logprobs.content) == chat.usage.completion_tokens
print(f"chat: {answer!r}")

pieces = []
with client.chat.completions.create(
    model=name,
    messages=[{"role": "user", "content": "¿Cuál es la capital de Chile?"}],
    max_tokens=24,
    temperature=0,
    stream=True,
    stream_options={"include_usage": True},
    extra_body={"cache_prompt": False},
) as stream:
    usage = None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        usage = chunk.usage or usage
assert "".join(pieces) == answer, (pieces, answer)
assert usage.completion_tokens == chat.usage.completion_tokens
print(f"stream: {len(pieces)} chunks, same text")

completion = client.completions.create(
    model=name, prompt="La capital de Chile es Santiago", max_tokens=1, echo=True, logprobs=1,
    temperature=0,
)
logprobs = completion.choices[0].logprobs
assert logprobs.token_logprobs[0] is None
assert all(v < 0 for v in logprobs.token_logprobs[1:]), logprobs.token_logprobs
print(f"echo logprobs: {len(logprobs.tokens)} tokens")

try:
    client.completions.create(model=name, prompt="hola", n=2)
    sys.exit("n=2 was accepted")
except openai.BadRequestError as e:
    print(f"error as the client expects: {e.status_code} {e.body['message']}")
try:
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hola"}])
    sys.exit("an unknown model was accepted")
except openai.NotFoundError as e:
    assert e.param == "model", e.body
    print(f"unknown model: {e.status_code}")
for params, param in [({"max_tokens": -1}, "max_tokens"), ({"temperature": "hot"}, "temperature"),
                      ({"messages": "hola"}, "messages")]:
    try:
        client.chat.completions.create(
            **{"model": name, "messages": [{"role": "user", "content": "hola"}], **params})
        sys.exit(f"{params} was accepted")
    except openai.BadRequestError as e:
        assert e.param == param, (params, e.body)
        assert "usize" not in e.body["message"] and "line 1" not in e.body["message"], e.body
        print(f"{params}: {e.status_code} {e.body['message']}")
print("openai client: all checks passed")
