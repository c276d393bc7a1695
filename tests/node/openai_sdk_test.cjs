// The official OpenAI Node SDK (npm `openai`) as a client of lstmserve's HTTP
// front: completions streaming and not (greedy text == the gRPC text),
// embeddings (the SDK asks for base64), and errors as the SDK's typed
// exceptions. Usage: node openai_sdk_test.cjs BUILD_DIR
"use strict";
const { requireNpm, startServer, run, assertEqual } = require("./server_fixture.cjs");
const { OpenAI } = requireNpm("openai");

run(async () => {
  const server = await startServer(process.argv[2]);
  try {
    const client = new OpenAI({ baseURL: server.baseUrl + "/v1", apiKey: "unused", maxRetries: 0 });
    const prompt = "ROMEO:\n";
    const expected = server.grpcGreedy(prompt, 80);
    if (expected.length < 40) throw new Error("gRPC text too short: " + JSON.stringify(expected));

    const models = await client.models.list();
    assertEqual(models.data[0].id, server.model, "models.list id");

    const whole = await client.completions.create({
      model: server.model, prompt, max_tokens: 80, temperature: 0 });
    assertEqual(whole.object, "text_completion", "object");
    assertEqual(whole.choices[0].text, expected, "non-streamed text vs gRPC");
    assertEqual(whole.choices[0].finish_reason, "length", "finish_reason");
    assertEqual(whole.usage.completion_tokens, 80, "usage.completion_tokens");

    const stream = await client.completions.create({
      model: server.model, prompt, max_tokens: 80, temperature: 0, stream: true,
      stream_options: { include_usage: true } });
    let text = "", chunks = 0, finish = null, usage = null;
    for await (const chunk of stream) {
      chunks++;
      if (chunk.choices && chunk.choices.length) {
        text += chunk.choices[0].text;
        if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    if (chunks < 2) throw new Error("expected several stream chunks, got " + chunks);
    assertEqual(text, expected, "streamed text vs gRPC");
    assertEqual(finish, "length", "streamed finish_reason");
    assertEqual(usage && usage.total_tokens, usage && usage.prompt_tokens + 80, "streamed usage");

    const embedding = await client.embeddings.create({ model: server.model, input: "Good morrow" });
    const vector = embedding.data[0].embedding;
    const info = models.data[0];
    assertEqual(vector.length, info.hidden_size, "embedding length");
    if (!vector.every(Number.isFinite)) throw new Error("embedding has non-finite values");

    try {
      await client.completions.create({ model: server.model, prompt, max_tokens: 0 });
      throw new Error("max_tokens 0 was accepted");
    } catch (e) {
      if (!(e instanceof OpenAI.BadRequestError)) throw e;
      assertEqual(e.status, 400, "status");
      assertEqual(e.param, "max_tokens", "error param");
    }
    try {
      await client.completions.create({ model: "nope", prompt, max_tokens: 2 });
      throw new Error("unknown model was accepted");
    } catch (e) {
      if (!(e instanceof OpenAI.NotFoundError)) throw e;
    }
  } finally {
    await server.stop();
  }
});
