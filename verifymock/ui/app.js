// The verifymock page: everything it shows comes from the control API, read again whenever /_mock/events says
// the state changed. No framework and no build step; text from requests is only ever set as text, never as HTML.
"use strict";

const UI_HEADERS = { "x-verifymock-ui": "1" };
const state = {
  selected: null,
  scenarios: [],
  bindings: {},
  handsets: [],
  watched: new Set(),
  journalBefore: null, // null: the newest page, which follows changes; else the id the shown page is older than
  journalOldest: null,
  story: null, // the id of the story shown in the timeline
};
let refreshing = null;
let again = false;

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function count(n, noun) {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function headers(extra = {}) {
  const token = sessionStorage.getItem("verifymock-token");
  return { ...UI_HEADERS, ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra };
}

async function api(path, options = {}) {
  const init = { ...options, headers: headers(options.body ? { "content-type": "application/json" } : {}) };
  if (options.body) init.body = JSON.stringify(options.body);
  const response = await fetch(`/_mock${path}`, init);
  if (response.status === 401) {
    $("token-form").hidden = false;
    throw new Error("The control token is missing or wrong.");
  }
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error((body && (body.detail || body.title)) || `HTTP ${response.status}`);
  return body;
}

// -- the event stream -------------------------------------------------------------------------------------------

async function listen() {
  for (;;) {
    try {
      const response = await fetch("/_mock/events", { headers: headers() });
      if (response.status === 401) {
        $("token-form").hidden = false;
        setLive("Waiting for the control token.");
        await new Promise((resolve) => $("token-form").addEventListener("submit", resolve, { once: true }));
        continue;
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      setLive("Live");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith("event: change")) refresh();
        }
      }
    } catch (error) {
      setLive(`Disconnected (${error.message}); reconnecting…`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function setLive(text) {
  $("live").textContent = text;
}

// -- reading and showing ----------------------------------------------------------------------------------------

function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    try {
      await load();
    } catch (error) {
      setLive(error.message);
    } finally {
      refreshing = null;
      if (again) {
        again = false;
        refresh();
      }
    }
  })();
  return refreshing;
}

async function load() {
  const filters = new FormData($("journal-filters"));
  const query = new URLSearchParams();
  for (const [key, value] of filters.entries()) if (value) query.set(key, value);
  if (state.journalBefore !== null) query.set("before", String(state.journalBefore));
  const [clock, handsets, bindings, webhooks, journal, stories, coverage] = await Promise.all([
    api("/clock"),
    api("/handsets"),
    api("/bindings"),
    api("/webhooks"),
    api(`/journal?${query}`),
    api("/timeline"),
    api("/coverage"),
  ]);
  if (!stories.data.some((s) => s.id === state.story)) state.story = stories.data.length ? stories.data[0].id : null;
  const story = state.story ? await api(`/timeline/${encodeURIComponent(state.story)}`) : null;
  if (!state.scenarios.length) state.scenarios = (await api("/scenarios")).data;
  state.bindings = Object.fromEntries(bindings.data.map((b) => [b.phone_number, b.scenario]));
  state.handsets = handsets.data;
  for (const number of state.watched) {
    if (!state.handsets.some((h) => h.phone_number === number)) {
      state.handsets.push({ phone_number: number, calls: [], messages: [] });
    }
  }
  if (!state.selected && state.handsets.length) state.selected = state.handsets[0].phone_number;
  showClock(clock);
  showNumbers();
  showHandset();
  showWebhooks(webhooks.data);
  showJournal(journal.data);
  showStories(stories.data);
  showTimeline(story);
  showCoverage(coverage);
  document.body.dataset.version = String(Number(document.body.dataset.version || 0) + 1);
}

function showClock(clock) {
  $("clock-now").textContent = clock.now;
  $("clock-now").setAttribute("datetime", clock.now);
  $("clock-mode").textContent = clock.mode;
}

function liveCall(handset) {
  return [...handset.calls].reverse().find((c) => c.state === "ringing" || c.state === "in_progress");
}

function showNumbers() {
  const list = $("number-list");
  list.replaceChildren(
    ...state.handsets.map((handset) => {
      const call = liveCall(handset);
      const selected = handset.phone_number === state.selected;
      return el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: `number${selected ? " selected" : ""}`,
            "aria-pressed": selected ? "true" : "false",
            "data-number": handset.phone_number,
            onclick: () => {
              state.selected = handset.phone_number;
              showNumbers();
              showHandset();
            },
          },
          el("span", { class: "phone" }, handset.phone_number),
          call ? el("span", { class: `badge state-${call.state}` }, call.state.replace("_", " ")) : null,
          el("span", { class: "counts" }, `${count(handset.calls.length, "call")} · ${count(handset.messages.length, "message")}`),
        ),
      );
    }),
  );
  $("no-numbers").hidden = state.handsets.length > 0;
}

function showHandset() {
  const handset = state.handsets.find((h) => h.phone_number === state.selected);
  $("handset").hidden = !handset;
  if (!handset) return;
  $("handset-title").textContent = `Handset ${handset.phone_number}`;

  const select = $("scenario");
  const bound = state.bindings[handset.phone_number] || "";
  select.replaceChildren(
    el("option", { value: "" }, "(not bound: header, reserved number or default)"),
    ...state.scenarios.map((s) => el("option", { value: s.id, selected: s.id === bound }, s.id)),
  );
  select.value = bound;
  const description = state.scenarios.find((s) => s.id === bound);
  $("scenario-description").textContent = description ? description.summary || "" : "";

  const call = liveCall(handset);
  const current = $("current-call");
  if (call) {
    current.replaceChildren(
      el("p", {}, el("span", { class: `badge state-${call.state}`, id: "call-state" }, call.state.replace("_", " ")),
        ` ${call.vendor} ${call.kind} call from ${call.caller_id}`),
      ...(call.prompts.length ? [el("blockquote", { class: "prompt" }, call.prompts[call.prompts.length - 1])] : []),
      el("p", {}, "Digits pressed: ", el("output", { id: "call-digits" }, call.digits || "none")),
    );
  } else {
    current.replaceChildren(el("p", { class: "empty" }, "No ringing or live call."));
  }
  $("answer").disabled = !call || call.state !== "ringing";
  $("decline").disabled = !call || call.state !== "ringing";
  $("hangup").disabled = !call;
  for (const button of document.querySelectorAll("[data-digit]")) {
    button.disabled = !call || call.state !== "in_progress";
  }

  $("call-rows").replaceChildren(
    ...[...handset.calls].reverse().map((c) =>
      el(
        "tr",
        {},
        el("td", {}, c.started_at),
        el("td", {}, c.vendor),
        el("td", {}, c.kind),
        el("td", {}, el("span", { class: `badge state-${c.state}` }, c.end_reason && c.end_reason !== c.state ? `${c.state} (${c.end_reason})` : c.state)),
        el("td", {}, c.digits),
        el("td", {}, c.scenario),
      ),
    ),
  );
  $("message-list").replaceChildren(
    ...(handset.messages.length
      ? [...handset.messages].reverse().map((m) =>
          el("li", {}, el("span", { class: "meta" }, `${m.at} · ${m.vendor} ${m.channel} from ${m.from} · ${m.status}`), el("p", {}, m.text)),
        )
      : [el("li", { class: "empty" }, "No messages.")]),
  );
}

function showWebhooks(deliveries) {
  $("webhook-rows").replaceChildren(
    ...[...deliveries].reverse().map((d) =>
      el(
        "tr",
        { "data-subject": d.subject },
        el("td", {}, d.id),
        el("td", {}, d.created_at),
        el("td", {}, d.event_type || d.vendor),
        el("td", {}, d.subject),
        el("td", {}, el("span", { class: `badge delivery-${d.state}` }, d.state)),
        el(
          "td",
          {},
          el(
            "details",
            {},
            el("summary", {}, `${d.attempts.length} attempt${d.attempts.length === 1 ? "" : "s"}`),
            el(
              "ol",
              {},
              d.attempts.map((a) =>
                el("li", {}, `${a.at} → ${a.url}: ${a.status_code ?? "no answer"}${a.error ? ` (${a.error})` : ""}`),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

// -- timelines: each verification's story as a sequence across four lanes ---------------------------------------

const SVG = "http://www.w3.org/2000/svg";
const LANES = { app: "your app", vendor: "vendor (mock)", phone: "phone", receiver: "your webhook receiver" };
const STORY_KINDS = {
  "telnyx.verification": "Telnyx verification",
  "telesign.transaction": "TeleSign transaction",
  "cm.call": "CM call",
  "tollfree.request": "Toll-free request",
};

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children.flat(Infinity)) {
    if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function cut(text, length) {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

function showStories(stories) {
  $("story-list").replaceChildren(
    ...stories.map((s) =>
      el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: `story${s.id === state.story ? " selected" : ""}`,
            "aria-pressed": s.id === state.story ? "true" : "false",
            "data-story": s.id,
            onclick: () => {
              state.story = s.id;
              refresh();
            },
          },
          el("span", { class: "phone" }, `${STORY_KINDS[s.kind] || s.kind} ${s.phone_number}`),
          el("span", { class: "counts" }, s.last ? `${s.last} · ${s.at}` : "nothing yet"),
        ),
      ),
    ),
  );
}

function clockTime(at) {
  return at.slice(11, 23); // HH:MM:SS.mmm of the mock's clock
}

function showTimeline(story) {
  const box = $("timeline");
  if (!story) {
    box.replaceChildren(el("p", { class: "empty" }, "No verification yet. Each one's story shows here."));
    return;
  }
  const lanes = story.lanes;
  const left = 110, laneWidth = 210, top = 46, row = 36;
  const x = (lane) => left + laneWidth * (lanes.indexOf(lane) + 0.5);
  const width = left + laneWidth * lanes.length;
  const height = top + row * story.events.length + 24;
  const days = new Set(story.events.map((e) => e.at.slice(0, 10)));
  const drawing = svg(
    "svg",
    { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "timeline-heading", class: "sequence" },
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", class: "head" }))),
    lanes.map((lane) => [
      svg("text", { x: x(lane), y: 18, class: "lane-name", "text-anchor": "middle" }, LANES[lane] || lane),
      svg("line", { x1: x(lane), y1: 28, x2: x(lane), y2: height - 8, class: "lifeline" }),
    ]),
    story.events.map((e, i) => {
      const y = top + row * i + row / 2;
      const seconds = e.seconds ? ` (${e.seconds} s)` : "";
      const label = `${e.label}${seconds}`;
      const when = days.size > 1 ? `${e.at.slice(5, 10)} ${clockTime(e.at)}` : clockTime(e.at);
      const shown = cut(e.label, 52 - seconds.length) + seconds; // how long a prompt plays is always shown
      const parts = [
        svg("title", {}, `${e.at} · ${label}${e.detail ? ` · ${e.detail}` : ""}`),
        svg("text", { x: 6, y: y + 4, class: "time" }, when),
      ];
      if (e.from === e.to) {
        parts.push(svg("rect", { x: x(e.from) - 100, y: y - 13, width: 200, height: 22, rx: 4, class: "note" }));
        parts.push(svg("text", { x: x(e.from), y: y + 3, class: "label", "text-anchor": "middle" }, cut(shown, 30)));
      } else {
        const back = lanes.indexOf(e.to) < lanes.indexOf(e.from);
        const failed = e.to === "receiver" && !/→ 2\d\d$/.test(e.label); // an attempt the receiver did not take
        const kind = `arrow${back ? " back" : ""}${failed ? " failed" : ""}`;
        parts.push(svg("line", { x1: x(e.from), y1: y + 6, x2: x(e.to), y2: y + 6, class: kind, "marker-end": "url(#arrow)" }));
        parts.push(svg("text", { x: (x(e.from) + x(e.to)) / 2, y: y, class: "label", "text-anchor": "middle" }, shown));
      }
      return svg("g", { class: `event from-${e.from} to-${e.to}`, "data-seq": e.seq }, parts);
    }),
  );
  box.replaceChildren(
    el("h3", { id: "timeline-heading" }, `${STORY_KINDS[story.kind] || story.kind} ${story.id} to ${story.phone_number}`),
    ...(story.truncated ? [el("p", { class: "hint" }, "Only the first events are kept for a story this long.")] : []),
    el("div", { class: "sequence-scroll" }, drawing),
  );
}

// -- outcome coverage ---------------------------------------------------------------------------------------------

function showCoverage(report) {
  $("coverage-summary").textContent = `${report.reached} of ${report.total} outcomes reached (${report.percent}%)`;
  $("coverage-findings").replaceChildren(
    ...report.findings.map((f) =>
      el("p", { class: "finding", role: "alert" }, el("strong", {}, "Finding: "), `${f.description} (${f.name}, ${count(f.count, "time")})`),
    ),
  );
  $("coverage-groups").replaceChildren(
    ...report.vendors.map((v) =>
      el(
        "details",
        { class: "coverage-group", open: true, "data-vendor": v.vendor },
        el("summary", {}, `${v.title}: ${v.reached} of ${v.total}`),
        el(
          "ul",
          {},
          v.outcomes
            .filter((o) => !o.finding)
            .map((o) =>
              el(
                "li",
                { class: o.reached ? "reached" : "unreached", "data-outcome": o.name, title: `${o.description} How: ${o.how}` },
                el("span", { class: "mark", "aria-hidden": "true" }, o.reached ? "✓" : "·"),
                el("code", {}, o.name),
                el("span", { class: "visually-hidden" }, o.reached ? " reached" : " not reached"),
                o.reached ? el("span", { class: "counts" }, ` ×${o.count}`) : null,
              ),
            ),
        ),
      ),
    ),
  );
}

function showJournal(entries) {
  state.journalOldest = entries.length ? entries[0].id : null;
  $("journal-older").disabled = entries.length < Number(new FormData($("journal-filters")).get("limit"));
  $("journal-newest").disabled = state.journalBefore === null;
  $("journal-rows").replaceChildren(
    ...[...entries].reverse().map((e) =>
      el(
        "tr",
        {},
        el("td", {}, e.id),
        el("td", {}, e.at),
        el(
          "td",
          {},
          el(
            "details",
            {},
            el("summary", {}, `${e.method} ${e.path}${e.query ? `?${e.query}` : ""}`),
            el("h4", {}, "Request body"),
            el("pre", {}, JSON.stringify(e.request.body, null, 2)),
            el("h4", {}, "Response body"),
            el("pre", {}, JSON.stringify(e.response.body, null, 2)),
          ),
        ),
        el("td", {}, e.operation_id || "–"),
        el("td", {}, el("span", { class: `badge status-${String(e.status_code)[0]}xx` }, e.status_code)),
        el("td", {}, e.duration_ms),
      ),
    ),
  );
}

// -- acting -----------------------------------------------------------------------------------------------------

async function act(action, body) {
  $("action-error").textContent = "";
  try {
    await api(`/handsets/${encodeURIComponent(state.selected)}/${action}`, { method: "POST", body });
  } catch (error) {
    $("action-error").textContent = error.message;
  }
  await refresh();
}

function wire() {
  $("answer").addEventListener("click", () => act("answer"));
  $("decline").addEventListener("click", () => act("decline"));
  $("hangup").addEventListener("click", () => act("hangup"));
  for (const button of document.querySelectorAll("[data-digit]")) {
    button.addEventListener("click", () => act("press", { digits: button.dataset.digit }));
  }
  document.addEventListener("keydown", (event) => {
    const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement;
    const button = !typing && document.querySelector(`[data-digit="${CSS.escape(event.key)}"]`);
    if (button && !button.disabled) button.click();
  });
  for (const button of document.querySelectorAll("[data-advance]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await api("/clock/advance", { method: "POST", body: { seconds: Number(button.dataset.advance) } });
      } catch (error) {
        setLive(error.message);
      } finally {
        button.disabled = false;
      }
      refresh();
    });
  }
  $("scenario").addEventListener("change", async (event) => {
    const number = encodeURIComponent(state.selected);
    const scenario = event.target.value;
    try {
      if (scenario) await api(`/bindings/${number}`, { method: "PUT", body: { scenario } });
      else if (state.bindings[state.selected]) await api(`/bindings/${number}`, { method: "DELETE" });
    } catch (error) {
      $("action-error").textContent = error.message;
    }
    refresh();
  });
  $("watch-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const number = $("watch-number").value.trim();
    state.watched.add(number);
    state.selected = number;
    $("watch-number").value = "";
    refresh();
  });
  $("journal-filters").addEventListener("input", () => {
    state.journalBefore = null;
    refresh();
  });
  $("journal-older").addEventListener("click", () => {
    state.journalBefore = state.journalOldest;
    refresh();
  });
  $("journal-newest").addEventListener("click", () => {
    state.journalBefore = null;
    refresh();
  });
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("verifymock-token", $("token").value);
    $("token-form").hidden = true;
    refresh();
  });
}

wire();
refresh();
listen();
