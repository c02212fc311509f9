// The page asks the server once per Detect, with a low threshold, and keeps every box: the slider then only
// filters and redraws what it already has, so trying thresholds costs no request.
"use strict";

const REQUEST_CONF = 0.01;
const MASK_ALPHA = 0.45;
const PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
                 "#fabed4", "#469990", "#9a6324", "#800000", "#808000", "#000075"];

const $ = (id) => document.getElementById(id);
const state = { image: null, name: "", record: null };

function headers() {
  const token = $("token").value.trim();
  localStorage.setItem("ovdet-token", token);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function showStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function failure(response) {
  try {
    const body = await response.json();
    return `${response.status}: ${body.detail}`;
  } catch {
    return `${response.status}: ${response.statusText}`;
  }
}

function classNames() {
  return $("classes").value.split(",").map((name) => name.trim()).filter(Boolean);
}

async function loadVocabularies() {
  const response = await fetch("/v1/vocabularies", { headers: headers() });
  if (!response.ok) {
    showStatus(`stored vocabularies: ${await failure(response)}`, response.status !== 401);
    return;
  }
  const select = $("vocabulary");
  const chosen = select.value;
  select.replaceChildren(new Option("(type classes)", ""));
  for (const name of (await response.json()).vocabularies) select.add(new Option(name, name));
  select.value = chosen;
}

function useImage(source, width, height, name) {
  const frame = document.createElement("canvas");
  frame.width = width;
  frame.height = height;
  frame.getContext("2d").drawImage(source, 0, 0, width, height);
  state.image = frame;
  state.name = name;
  state.record = null;
  draw();
}

function openFile(file) {
  const url = URL.createObjectURL(file);
  if (file.type.startsWith("video/")) {
    const video = $("video");
    $("frame-picker").hidden = false;
    video.src = url;
    video.onloadedmetadata = () => { $("frame-time").max = video.duration.toFixed(2); video.currentTime = 0; };
    video.onseeked = () => {
      const name = `${file.name} at ${video.currentTime.toFixed(2)} s`;
      useImage(video, video.videoWidth, video.videoHeight, name);
    };
    return;
  }
  $("frame-picker").hidden = true;
  const image = new Image();
  image.onload = () => useImage(image, image.naturalWidth, image.naturalHeight, file.name);
  image.onerror = () => showStatus(`${file.name} could not be read as an image`, true);
  image.src = url;
}

async function detect() {
  if (!state.image) return showStatus("choose an image or a video frame first", true);
  const form = new FormData();
  const blob = await new Promise((done) => state.image.toBlob(done, "image/png"));
  form.append("image", blob, state.name);
  if ($("vocabulary").value) form.append("vocabulary", $("vocabulary").value);
  else form.append("classes", $("classes").value);
  form.append("conf", REQUEST_CONF);
  if ($("imgsz").value) form.append("imgsz", $("imgsz").value);
  showStatus("detecting…");
  const response = await fetch("/v1/detect", { method: "POST", body: form, headers: headers() });
  if (!response.ok) return showStatus(await failure(response), true);
  state.record = await response.json();
  draw();
}

function visible() {
  const threshold = Number($("threshold").value);
  return state.record ? state.record.detections.filter((box) => box.confidence >= threshold) : [];
}

function draw() {
  const canvas = $("canvas");
  const context = canvas.getContext("2d");
  if (!state.image) return;
  canvas.width = state.image.width;
  canvas.height = state.image.height;
  context.drawImage(state.image, 0, 0);
  const boxes = visible();
  const line = Math.max(2, Math.round(canvas.width / 400));
  context.font = `${Math.max(12, Math.round(canvas.width / 60))}px sans-serif`;
  context.lineWidth = line;
  for (const box of boxes) if (box.polygon) drawMask(context, box.polygon, PALETTE[box.class_id % PALETTE.length]);
  const list = $("detections");
  list.replaceChildren();
  for (const box of boxes) {
    const color = PALETTE[box.class_id % PALETTE.length];
    const [x1, y1, x2, y2] = box.xyxy;
    const label = `${box.class_name} ${box.confidence.toFixed(2)}`;
    context.strokeStyle = color;
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const height = parseInt(context.font, 10) + 4;
    context.fillStyle = color;
    context.fillRect(x1, Math.max(0, y1 - height), context.measureText(label).width + 6, height);
    context.fillStyle = "#fff";
    context.fillText(label, x1 + 3, Math.max(height - 4, y1 - 4));
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = color;
    item.append(swatch, `${label} [${box.xyxy.map(Math.round).join(", ")}]`);
    list.append(item);
  }
  if (state.record) showStatus(`${boxes.length} of ${state.record.detections.length} boxes at or above ${$("threshold").value}`);
}

// A mask arrives as its boundary rings (parts, holes, parts in holes …; see the API docs): filled together with
// the even-odd rule, each hole stays clear.
function drawMask(context, rings, color) {
  const path = new Path2D();
  for (const ring of rings) {
    path.moveTo(ring[0], ring[1]);
    for (let i = 2; i < ring.length; i += 2) path.lineTo(ring[i], ring[i + 1]);
    path.closePath();
  }
  context.globalAlpha = MASK_ALPHA;
  context.fillStyle = color;
  context.fill(path, "evenodd");
  context.globalAlpha = 1;
}

function vocabularyYaml() {
  const conf = Number($("threshold").value);
  const lines = classNames().map((name) => `  ${JSON.stringify(name)}: {conf: ${conf}}`);
  return `# saved from the ovdet page\nclasses:\n${lines.join("\n")}\n`;
}

async function saveOnServer() {
  const name = $("vocabulary-name").value.trim();
  if (!name || classNames().length === 0) return showStatus("type classes and a name to store them under", true);
  const response = await fetch(`/v1/vocabularies/${encodeURIComponent(name)}`, {
    method: "PUT", body: vocabularyYaml(), headers: { ...headers(), "Content-Type": "application/yaml" },
  });
  if (!response.ok) return showStatus(await failure(response), true);
  showStatus(`stored vocabulary ${name}`);
  await loadVocabularies();
}

function download() {
  if (classNames().length === 0) return showStatus("type classes to save", true);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([vocabularyYaml()], { type: "application/yaml" }));
  link.download = `${$("vocabulary-name").value.trim() || "vocabulary"}.yaml`;
  link.click();
}

$("token").value = localStorage.getItem("ovdet-token") || "";
$("file").addEventListener("change", (event) => event.target.files[0] && openFile(event.target.files[0]));
$("frame-time").addEventListener("input", (event) => {
  $("frame-time-value").textContent = `${Number(event.target.value).toFixed(2)} s`;
  $("video").currentTime = Number(event.target.value);
});
$("threshold").addEventListener("input", (event) => {
  $("threshold-value").textContent = Number(event.target.value).toFixed(3);
  draw();
});
$("detect").addEventListener("click", detect);
$("save-server").addEventListener("click", saveOnServer);
$("save-download").addEventListener("click", download);
$("token").addEventListener("change", loadVocabularies);
loadVocabularies();
