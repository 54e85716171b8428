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
  const [clock, handsets, bindings, webhooks, journal] = await Promise.all([
    api("/clock"),
    api("/handsets"),
    api("/bindings"),
    api("/webhooks"),
    api(`/journal?${query}`),
  ]);
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
