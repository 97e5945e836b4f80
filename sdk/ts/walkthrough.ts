// The README's walkthrough through the generated TypeScript client only (openapi-fetch over
// the types openapi-typescript generated from openapi/openapi.json): upload the two demo
// models, queue a fusion job, follow its events, read the report and the accuracy plot,
// download the fused weights at the report's best proportion and check that they parse as
// safetensors with the inputs' tensors.
//
//   GMFUSE_URL=http://127.0.0.1:8080 [GMFUSE_API_KEY=gmf_…] node dist/walkthrough.js
import { readFile } from "node:fs/promises";
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/gmfuse.js";

type Problem = components["schemas"]["Problem"];
type JobEvent = components["schemas"]["JobEvent"];
type JobEventName = components["schemas"]["JobEventName"];
type ModelView = components["schemas"]["ModelView"];

const base = process.env["GMFUSE_URL"] ?? "http://127.0.0.1:8080";
const key = process.env["GMFUSE_API_KEY"];
const client = createClient<paths>({
  baseUrl: base,
  headers: key ? { Authorization: `Bearer ${key}` } : {},
});
// Compiled to sdk/ts/dist/walkthrough.js: the demo models are three folders up.
const demo = new URL("../../../assets/demo/", import.meta.url);

function fail(what: string, problem: Problem | undefined): never {
  throw new Error(`${what}: ${problem ? `${problem.status} ${problem.code}: ${problem.detail ?? ""}` : "no body"}`);
}

async function upload(name: string): Promise<ModelView> {
  const bytes = await readFile(new URL(`${name}.safetensors`, demo));
  const { data, error } = await client.POST("/v1/models", {
    params: { query: { name } },
    body: new Blob([bytes]),
    bodySerializer: (body) => body,
    headers: { "Content-Type": "application/octet-stream" },
  });
  if (!data) fail(`upload ${name}`, error);
  console.log(`uploaded ${name}: ${data.id} (${data.architecture ?? "?"}, ${data.tensors.length} tensors)`);
  return data;
}

const EVENT_NAMES: readonly JobEventName[] = ["status", "progress"];

function isEventName(s: string): s is JobEventName {
  return EVENT_NAMES.some((n) => n === s);
}

/** The job's event stream, read to its end (after the terminal status). */
async function events(id: string): Promise<Array<[JobEventName, JobEvent]>> {
  const { data, error } = await client.GET("/v1/jobs/{id}/events", {
    params: { path: { id } },
    parseAs: "text",
  });
  if (data === undefined) fail("events", error);
  const out: Array<[JobEventName, JobEvent]> = [];
  for (const block of data.split("\n\n")) {
    const fields = new Map<string, string>();
    for (const line of block.split("\n")) {
      const at = line.indexOf(": ");
      if (at > 0) fields.set(line.slice(0, at), line.slice(at + 2));
    }
    const name = fields.get("event");
    const payload = fields.get("data");
    if (name !== undefined && payload !== undefined && isEventName(name)) {
      const event: JobEvent = JSON.parse(payload);
      out.push([name, event]);
    }
  }
  return out;
}

/** The tensor names of a safetensors file (its 8-byte length and JSON header). */
function safetensorsNames(bytes: Uint8Array): Set<string> {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header: Record<string, unknown> = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  return new Set(Object.keys(header).filter((k) => k !== "__metadata__"));
}

async function main(): Promise<void> {
  const a = await upload("model-a");
  const b = await upload("model-b");

  const created = await client.POST("/v1/jobs", {
    body: {
      models: [a.id, b.id],
      architecture: "mnist-cnn",
      dataset: "mnist-test",
      proportions: [0, 0.25, 0.5, 0.75, 1],
    },
  });
  if (!created.data) fail("create job", created.error);
  const job = created.data;
  console.log(`job ${job.id}: ${job.status}`);

  const seen = await events(job.id);
  for (const [name, event] of seen) {
    const progress = event.progress ? ` ${event.progress.stage} ${event.progress.fraction.toFixed(2)}` : "";
    console.log(`  ${name}: ${event.status}${progress}`);
  }
  const last = seen.at(-1);
  if (last?.[1].status !== "succeeded") {
    const now = await client.GET("/v1/jobs/{id}", { params: { path: { id: job.id } } });
    throw new Error(`job ended ${now.data?.status ?? "?"}: ${now.data?.error?.message ?? ""}`);
  }

  const report = await client.GET("/v1/jobs/{id}/report", { params: { path: { id: job.id } } });
  if (!report.data) fail("report", report.error);
  const best = report.data.best;
  for (const curve of report.data.curves) {
    const points = curve.points.map((p) => `${p.proportion}:${p.accuracy.toFixed(2)}`).join(" ");
    console.log(`  ${curve.method.padEnd(16)} ${points}`);
  }
  console.log(`best: ${best.method} at ${best.proportion ?? "-"} = ${best.accuracy.toFixed(2)} %`);

  const svg = await client.GET("/v1/jobs/{id}/report.svg", {
    params: { path: { id: job.id } },
    parseAs: "text",
  });
  if (svg.data === undefined || !svg.data.includes("<svg")) fail("report.svg", svg.error);

  const fused = await client.GET("/v1/jobs/{id}/fused", {
    params: {
      path: { id: job.id },
      query: {
        method: best.method,
        ...(best.solver ? { solver: best.solver } : {}),
        ...(best.proportion !== undefined && best.proportion !== null ? { proportion: best.proportion } : {}),
      },
    },
    parseAs: "arrayBuffer",
  });
  if (!fused.data) fail("fused", fused.error);
  const bytes = new Uint8Array(fused.data);
  const names = safetensorsNames(bytes);
  const want = new Set(a.tensors.map((t) => t.name));
  if (names.size !== want.size || [...want].some((n) => !names.has(n))) {
    throw new Error(`fused tensors ${[...names].join(",")} are not the inputs' ${[...want].join(",")}`);
  }
  console.log(`fused weights at ${best.proportion ?? "-"}: ${bytes.length} bytes, ${names.size} tensors`);
  console.log("typescript walkthrough: ok");
}

await main();
