// Validates an OpenAPI document with a real validator: @apidevtools/swagger-parser
// checks it against the OpenAPI 3.1 schema and resolves every $ref; then, as that
// validator does for Swagger 2.0 only, every path template's names must be declared
// as path parameters of each of its operations, and operation ids must be unique.
// Usage: node validate_openapi.mjs FILE.json    exit 0 when valid
import { requireFromNodeModules } from "./node_modules_path.mjs";

const SwaggerParser = requireFromNodeModules("@apidevtools/swagger-parser");
const file = process.argv[2];
if (!file) {
  console.error("usage: node validate_openapi.mjs FILE.json");
  process.exit(2);
}

/// Problems the schema cannot see, in a dereferenced document.
function semanticProblems(api) {
  const problems = [], ids = new Set();
  for (const [path, item] of Object.entries(api.paths)) {
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    for (const [method, operation] of Object.entries(item)) {
      if (!["get", "put", "post", "delete", "patch", "head", "options"].includes(method)) continue;
      const declared = [...(item.parameters || []), ...(operation.parameters || [])]
        .filter((p) => p.in === "path").map((p) => p.name);
      for (const name of templated)
        if (!declared.includes(name)) problems.push(`${method} ${path}: path parameter {${name}} not declared`);
      for (const name of declared)
        if (!templated.includes(name)) problems.push(`${method} ${path}: declares path parameter ${name} not in the path`);
      if (operation.operationId) {
        if (ids.has(operation.operationId)) problems.push(`duplicate operationId ${operation.operationId}`);
        ids.add(operation.operationId);
      }
    }
  }
  return problems;
}

try {
  await SwaggerParser.validate(file);
  const api = await SwaggerParser.dereference(file);
  const problems = semanticProblems(api);
  if (problems.length) throw new Error(problems.join("\n  "));
  console.log(`valid: OpenAPI ${api.openapi}, ${Object.keys(api.paths).length} paths`);
} catch (error) {
  console.error("invalid:", error.message);
  process.exit(1);
}
