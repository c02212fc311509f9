// The API's routes, from this server's own /openapi.json: an offline stand-in for Swagger UI (whose files
// FastAPI loads from a CDN, and does not ship).
"use strict";

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function describeBody(body) {
  const list = element("ul");
  for (const [type, media] of Object.entries((body && body.content) || {})) {
    const fields = Object.keys((media.schema && media.schema.properties) || {});
    list.append(element("li", fields.length ? `${type}: ${fields.join(", ")}` : type));
  }
  return list;
}

function describeOperation(path, method, operation) {
  const section = element("article", undefined, "route");
  section.append(element("h2", `${method.toUpperCase()} ${path}`));
  if (operation.summary) section.append(element("p", operation.summary));
  if (operation.description) section.append(element("p", operation.description));
  const parameters = (operation.parameters || []).map((p) => `${p.name} (${p.in})`);
  if (parameters.length) section.append(element("p", `Parameters: ${parameters.join(", ")}`));
  if (operation.requestBody) {
    section.append(element("p", "Body:"));
    section.append(describeBody(operation.requestBody));
  }
  section.append(element("p", `Answers: ${Object.keys(operation.responses || {}).join(", ")}`));
  return section;
}

async function show() {
  const routes = document.getElementById("routes");
  try {
    const response = await fetch("/openapi.json");
    const spec = await response.json();
    routes.replaceChildren(element("p", `${spec.info.title} ${spec.info.version}: ${spec.info.description || ""}`));
    for (const [path, methods] of Object.entries(spec.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        routes.append(describeOperation(path, method, operation));
      }
    }
  } catch (error) {
    routes.replaceChildren(element("p", `Could not read /openapi.json: ${error}`, "error"));
  }
}

show();
