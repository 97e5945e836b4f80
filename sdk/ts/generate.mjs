// Generate the TypeScript types of the gmfuse API from openapi/openapi.json with
// openapi-typescript's Node API, into generated/gmfuse.ts. One option beyond the defaults,
// the one openapi-typescript documents for binary bodies: a schema of `format: binary`
// (uploads and downloads of safetensors files) is typed `Blob` instead of `string`.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";

const BLOB = ts.factory.createTypeReferenceNode(ts.factory.createIdentifier("Blob"));
const spec = JSON.parse(await readFile(new URL("../../openapi/openapi.json", import.meta.url), "utf8"));
const ast = await openapiTS(spec, {
  transform(schemaObject) {
    if (schemaObject.format === "binary") {
      return BLOB;
    }
    return undefined;
  },
});
await mkdir(new URL("generated/", import.meta.url), { recursive: true });
await writeFile(new URL("generated/gmfuse.ts", import.meta.url), astToString(ast));
console.log("generated/gmfuse.ts written");
