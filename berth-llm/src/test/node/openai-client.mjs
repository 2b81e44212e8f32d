// Drives a Berth server with the official OpenAI client, unchanged, and prints what it got as JSON.
// Usage: node openai-client.mjs BASE_URL CHAT_MODEL EMBEDDING_MODEL
import OpenAI from 'openai';

const [baseURL, chatModel, embeddingModel] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: 'not-needed', maxRetries: 0, timeout: 60_000 });
const messages = [
  { role: 'system', content: 'You are a test.' },
  { role: 'user', content: 'Hello, who are you?' },
];

const chat = await client.chat.completions.create({
  model: chatModel, messages, max_tokens: 12, temperature: 0,
});

let text = '';
let finish = null;
let usage = null;
let chunks = 0;
const stream = await client.chat.completions.create({
  model: chatModel, messages, max_tokens: 12, temperature: 0,
  stream: true, stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  chunks++;
  if (chunk.choices.length > 0) {
    text += chunk.choices[0].delta.content ?? '';
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  if (chunk.usage) usage = chunk.usage;
}

// the client asks for base64 and decodes it itself unless told otherwise
const embeddings = await client.embeddings.create({
  model: embeddingModel, input: ['A cat sits on the mat.', 'hello'],
});

const models = await client.models.list();

process.stdout.write(JSON.stringify({
  chat: {
    object: chat.object,
    content: chat.choices[0].message.content,
    role: chat.choices[0].message.role,
    finish: chat.choices[0].finish_reason,
    usage: chat.usage,
  },
  stream: { text, finish, usage, chunks },
  embeddings: {
    count: embeddings.data.length,
    dimensions: embeddings.data[0].embedding.length,
    first: Array.from(embeddings.data[0].embedding),
    usage: embeddings.usage,
  },
  models: models.data.map((m) => m.id),
}));
