// The dev page: join a room with the unmodified livekit-client (the bundled global `LivekitClient`), talk to the
// agent by microphone and on lk.chat, and show what the call did: transcript (lk.transcription), agent state
// (lk.agent.state), the resolved config (/api/calls/<room>/config), turn latency and the call events (SSE).
"use strict";

const LK = window.LivekitClient;
const $ = (id) => document.getElementById(id);
const CHAT_TOPIC = "lk.chat";
const TRANSCRIPTION_TOPIC = "lk.transcription";
const STATE_ATTRIBUTE = "lk.agent.state";

const page = {
  examples: [],
  room: null,
  identity: null,
  roomName: null,
  events: null,
  audio: null,
  meters: [],
  turns: [],
  segments: new Map(),
  configTimer: null,
};

// ---------- set-up panel ----------

async function loadSetup() {
  const [info, examples] = await Promise.all([getJson("/api/info"), getJson("/api/examples")]);
  $("server").textContent = `LiveKit: ${info.livekit_url} · agent ${info.agent_name}` + (info.events ? "" : " · events off");
  page.examples = examples;
  const dialect = $("dialect");
  dialect.append(new Option("any dialect", ""));
  for (const name of info.dialects) dialect.append(new Option(name, name));
  dialect.value = examples.some((c) => c.dialect === "sawt") ? "sawt" : "";
  dialect.addEventListener("change", () => fillExamples());
  $("example").addEventListener("change", () => applyExample());
  fillExamples();
}

function fillExamples() {
  const dialect = $("dialect").value;
  const select = $("example");
  select.replaceChildren();
  for (const c of page.examples.filter((c) => !dialect || c.dialect === dialect)) select.append(new Option(c.id, c.id));
  select.append(new Option("(empty payload)", ""));
  applyExample();
}

function applyExample() {
  const chosen = page.examples.find((c) => c.id === $("example").value);
  $("job-metadata").value = chosen ? chosen.job_metadata : "";
  $("room-metadata").value = chosen ? chosen.room_metadata : "";
  $("participant-metadata").value = chosen ? chosen.participant_metadata : "";
  const attributes = chosen ? chosen.attributes : {};
  $("attributes").value = Object.keys(attributes).length ? JSON.stringify(attributes, null, 2) : "";
  $("example-description").textContent = chosen ? chosen.description : "Write any dispatch metadata.";
  const env = chosen ? Object.entries(chosen.env) : [];
  $("example-env").hidden = env.length === 0;
  $("example-env").textContent = env.length
    ? "This case assumes the worker runs with " + env.map(([k, v]) => `${k}=${v}`).join(", ") + "."
    : "";
  if (chosen && (chosen.room_metadata || Object.keys(attributes).length || chosen.participant_metadata)) {
    $("more-inputs").open = true;
  }
  $("room").value = (chosen && chosen.room_name) || `demo-${$("dialect").value || "call"}-${randomId()}`;
}

// ---------- the call ----------

async function startCall(event) {
  event.preventDefault();
  $("call-error").textContent = "";
  let attributes = {};
  try {
    attributes = $("attributes").value.trim() ? JSON.parse($("attributes").value) : {};
  } catch {
    $("call-error").textContent = "Caller attributes must be a JSON object of strings.";
    $("attributes").focus();
    return;
  }
  setBusy(true);
  setStatus("Starting the call…", "idle");
  try {
    ensureAudio();
    const ticket = await postJson("/api/calls", {
      room: $("room").value,
      job_metadata: $("job-metadata").value,
      room_metadata: $("room-metadata").value,
      participant_metadata: $("participant-metadata").value,
      attributes,
    });
    resetCallViews();
    page.roomName = ticket.room;
    page.identity = ticket.identity;
    listenForEvents(ticket.room);
    await join(ticket);
  } catch (error) {
    $("call-error").textContent = String(error.message || error);
    setStatus("Not connected", "error");
    setBusy(false);
  }
}

async function join(ticket) {
  const room = new LK.Room({ adaptiveStream: false, dynacast: false });
  page.room = room;
  room.registerTextStreamHandler(TRANSCRIPTION_TOPIC, (reader) => readTranscription(reader));
  room.registerTextStreamHandler(CHAT_TOPIC, (reader, from) => readChat(reader, from.identity));
  room
    .on(LK.RoomEvent.TrackSubscribed, (track, _pub, participant) => onTrack(track, participant))
    .on(LK.RoomEvent.ParticipantConnected, (p) => { if (p.isAgent) { showAgentState(p); refreshConfig(); } })
    .on(LK.RoomEvent.ParticipantAttributesChanged, (_changed, p) => { if (p.isAgent) showAgentState(p); })
    .on(LK.RoomEvent.RoomMetadataChanged, () => refreshConfig())
    .on(LK.RoomEvent.Disconnected, () => endedLocally());
  await room.connect(ticket.url, ticket.token);
  await room.startAudio();
  setStatus(`Connected to ${ticket.room} as ${ticket.identity}`, "connected");
  $("hangup").disabled = false;
  $("mic").disabled = false;
  $("chat-input").disabled = false;
  $("send").disabled = false;
  for (const p of room.remoteParticipants.values()) if (p.isAgent) showAgentState(p);
  if ($("mic-at-start").checked) await setMicrophone(true);
  $("chat-input").focus();
  refreshConfig();
  page.configTimer = setInterval(refreshConfig, 5000);
}

async function hangUp() {
  const room = page.room;
  const name = page.roomName;
  if (!room) return;
  await room.disconnect();
  try {
    await postJson(`/api/calls/${encodeURIComponent(name)}/end`, {});
  } catch (error) {
    $("call-error").textContent = String(error.message || error);
  }
}

function endedLocally() {
  clearInterval(page.configTimer);
  page.room = null;
  setMicButton(false);
  for (const id of ["hangup", "mic", "chat-input", "send"]) $(id).disabled = true;
  setBusy(false);
  setStatus("Call ended", "idle");
  $("start").focus();
}

// ---------- audio: microphone, the agent's voice, level meters ----------

function ensureAudio() {
  if (!page.audio) page.audio = new AudioContext();
  if (page.audio.state === "suspended") page.audio.resume();
  return page.audio;
}

async function setMicrophone(on) {
  const room = page.room;
  if (!room) return;
  await room.localParticipant.setMicrophoneEnabled(on);
  setMicButton(on);
  const publication = room.localParticipant.getTrackPublication(LK.Track.Source.Microphone);
  if (on && publication && publication.track) meter(publication.track.mediaStreamTrack, $("mic-level"));
  if (!on) $("mic-level").value = 0;
}

function setMicButton(on) {
  $("mic").setAttribute("aria-pressed", String(on));
  $("mic").textContent = on ? "Microphone on" : "Microphone off";
}

function onTrack(track, participant) {
  if (track.kind !== LK.Track.Kind.Audio) return;
  const element = track.attach();
  $("audio-sink").append(element);
  if (participant.isAgent) meter(track.mediaStreamTrack, $("agent-level"));
}

// An RMS meter on one audio track; the highest level seen is kept in data-peak (the browser test reads it).
function meter(mediaStreamTrack, element) {
  const context = ensureAudio();
  const source = context.createMediaStreamSource(new MediaStream([mediaStreamTrack]));
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    if (mediaStreamTrack.readyState === "ended") {
      clearInterval(timer);
      element.value = 0;
      return;
    }
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    const level = Math.min(1, Math.sqrt(sum / samples.length) * 4);
    element.value = level;
    element.dataset.peak = String(Math.max(Number(element.dataset.peak || 0), level));
  }, 100);
  page.meters.push(timer);
}

// ---------- transcript: lk.transcription (both speakers) and lk.chat ----------

async function readTranscription(reader) {
  const attributes = reader.info.attributes || {};
  const segment = attributes["lk.segment_id"] || reader.info.id;
  const trackId = attributes["lk.transcribed_track_id"];
  // The agent publishes the caller's transcript too: it is the caller's when it transcribes one of our tracks.
  const fromAgent = !trackId || !isOwnTrack(trackId);
  const channel = trackId ? "voice" : "text";
  if (fromAgent) turnReplied("text");
  let text = "";
  // The agent streams a reply in pieces (one stream per segment); a caller's interim and final transcripts come
  // as whole texts, one stream each, for the same segment id.
  for await (const chunk of reader) {
    text += chunk;
    showSegment({ segment, fromAgent, channel, text, final: false });
  }
  const final = (reader.info.attributes || {})["lk.transcription_final"] === "true";
  showSegment({ segment, fromAgent, channel, text, final: final || fromAgent });
  if (!fromAgent && final && text.trim()) turnStarted("spoken");
}

function isOwnTrack(trackSid) {
  const room = page.room;
  return Boolean(room) && [...room.localParticipant.trackPublications.values()].some((p) => p.trackSid === trackSid);
}

async function readChat(reader, identity) {
  const text = await reader.readAll();
  if (identity === page.identity) return;
  turnReplied("text");
  showSegment({ segment: reader.info.id, fromAgent: true, channel: "chat", text, final: true });
}

async function sendChat(event) {
  event.preventDefault();
  const input = $("chat-input");
  const text = input.value.trim();
  if (!text || !page.room) return;
  input.value = "";
  turnStarted("typed");
  showSegment({ segment: `chat-${randomId()}`, fromAgent: false, channel: "chat", text, final: true });
  try {
    await page.room.localParticipant.sendText(text, { topic: CHAT_TOPIC });
  } catch (error) {
    $("call-error").textContent = `Not sent: ${error.message || error}`;
  }
}

function showSegment({ segment, fromAgent, channel, text, final }) {
  let entry = page.segments.get(segment);
  if (!entry) {
    entry = document.createElement("li");
    entry.className = `entry ${fromAgent ? "agent" : "user"}`;
    entry.innerHTML = '<div class="meta"><span class="who"></span><span class="tag channel"></span>' +
      '<span class="tag finality"></span><time></time></div><p class="text"></p>';
    entry.querySelector(".who").textContent = fromAgent ? "Agent" : "You";
    entry.querySelector("time").textContent = new Date().toLocaleTimeString();
    page.segments.set(segment, entry);
    $("transcript").append(entry);
  }
  entry.dataset.final = String(final);
  entry.dataset.channel = channel;
  entry.querySelector(".channel").textContent = channel;
  entry.querySelector(".finality").textContent = final ? "final" : "interim";
  entry.querySelector(".text").textContent = text;
  $("transcript").scrollTop = $("transcript").scrollHeight;
}

// ---------- agent state and per-turn latency ----------

function showAgentState(participant) {
  const state = participant.attributes[STATE_ATTRIBUTE] || "joined";
  const element = $("agent-state");
  if (element.dataset.state === state) return;
  element.dataset.state = state;
  element.textContent = state;
  if (state === "speaking") turnReplied("speaking");
}

// A turn runs from the caller's message (sent, or its final transcript) to the agent's first reply text and to the
// agent starting to speak; both are measured in this browser, so they include the network both ways.
function turnStarted(kind) {
  const open = page.turns[page.turns.length - 1];
  if (open && open.kind === kind && open.text === null) return; // a second final of the same spoken turn
  page.turns.push({ kind, at: performance.now(), text: null, speaking: null });
  renderTurns();
}

function turnReplied(what) {
  const turn = page.turns[page.turns.length - 1];
  if (!turn) return;
  const elapsed = Math.round(performance.now() - turn.at);
  if (what === "text" && turn.text === null) turn.text = elapsed;
  if (what === "speaking" && turn.speaking === null) turn.speaking = elapsed;
  renderTurns();
}

function renderTurns() {
  const body = $("latency").querySelector("tbody");
  body.replaceChildren();
  page.turns.forEach((turn, index) => {
    const row = body.insertRow();
    for (const value of [index + 1, turn.kind, ms(turn.text), ms(turn.speaking)]) row.insertCell().textContent = value;
  });
}

const ms = (value) => (value === null ? "–" : `${value} ms`);

// ---------- resolved config ----------

async function refreshConfig() {
  if (!page.roomName) return;
  let config;
  try {
    config = await getJson(`/api/calls/${encodeURIComponent(page.roomName)}/config`);
  } catch {
    return;
  }
  $("config-summary").textContent =
    `dialect ${config.dialect} · profile ${config.profile}` + (config.agent_id ? ` · agent ${config.agent_id}` : "");
  $("config-summary").dataset.dialect = config.dialect;
  const warnings = $("config-warnings");
  warnings.replaceChildren();
  for (const w of config.warnings) {
    const item = document.createElement("li");
    item.textContent = `${w.code} · ${w.field}: ${w.message}`;
    warnings.append(item);
  }
  const body = $("config-table").querySelector("tbody");
  body.replaceChildren();
  for (const [field, source] of Object.entries(config.provenance)) {
    const row = body.insertRow();
    row.dataset.field = field;
    row.insertCell().textContent = field;
    const value = row.insertCell();
    value.className = "value";
    value.textContent = display(lookup(config, field));
    const badge = document.createElement("span");
    badge.className = "source";
    badge.dataset.source = source;
    badge.textContent = source;
    row.insertCell().append(badge);
  }
}

function lookup(config, field) {
  let value = config;
  for (const part of field.split(".")) {
    if (value === null || typeof value !== "object" || !(part in value)) return undefined;
    value = value[part];
  }
  return value;
}

function display(value) {
  if (value === undefined) return "";
  if (typeof value === "string") return value.length > 140 ? value.slice(0, 140) + "…" : value;
  return JSON.stringify(value);
}

// ---------- call events (the worker's webhook, relayed by the dev page as server-sent events) ----------

function listenForEvents(room) {
  if (page.events) page.events.close();
  page.events = new EventSource(`/api/events?room=${encodeURIComponent(room)}`);
  page.events.onmessage = (message) => {
    const event = JSON.parse(message.data);
    const item = document.createElement("li");
    item.dataset.type = event.type;
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = `${event.type} · ${event.created_at || ""}` + (event.end_reason ? ` · ${event.end_reason}` : "");
    const body = document.createElement("pre");
    body.textContent = JSON.stringify(event, null, 2);
    details.append(summary, body);
    item.append(details);
    $("events").append(item);
  };
}

// ---------- helpers ----------

function resetCallViews() {
  for (const timer of page.meters) clearInterval(timer);
  page.meters = [];
  page.turns = [];
  page.segments.clear();
  for (const id of ["transcript", "events", "config-warnings"]) $(id).replaceChildren();
  $("config-table").querySelector("tbody").replaceChildren();
  $("latency").querySelector("tbody").replaceChildren();
  $("agent-state").dataset.state = "";
  $("agent-state").textContent = "not joined";
  $("agent-level").dataset.peak = "0";
  $("audio-sink").replaceChildren();
}

function setBusy(busy) {
  $("start").disabled = busy;
}

function setStatus(text, status) {
  $("status").textContent = text;
  $("status").dataset.status = status;
}

async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return response.json();
}

async function postJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(await response.text());
  return response.json();
}

function randomId() {
  return Math.random().toString(36).slice(2, 8);
}

$("call-form").addEventListener("submit", startCall);
$("chat-form").addEventListener("submit", sendChat);
$("hangup").addEventListener("click", hangUp);
$("mic").addEventListener("click", () => setMicrophone($("mic").getAttribute("aria-pressed") !== "true"));
loadSetup().catch((error) => {
  $("call-error").textContent = `Could not load the page's data: ${error.message || error}`;
});
