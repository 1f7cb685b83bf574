// Wharf's pages work without this script; with it, a running deployment's steps arrive
// live (server-sent events) and a workload's logs can be tailed (a streamed fetch).
"use strict";

const TONES = {
  succeeded: "good", ready: "good", done: "good", running: "good",
  failed: "bad", crashed: "bad",
  queued: "busy", pending: "busy", "in-progress": "busy", retrying: "busy",
  starting: "busy", deprovisioning: "busy",
};

function badge(state) {
  const span = document.createElement("span");
  span.className = "badge " + (TONES[state] || "quiet");
  span.dataset.state = state;
  span.textContent = state;
  return span;
}

function setStep(step) {
  const row = document.querySelector(`#steps tr[data-step="${CSS.escape(step.name)}"]`);
  if (!row) return;
  row.querySelector(".state").replaceChildren(badge(step.status));
  const took = step.duration_ms;
  row.querySelector(".took").textContent = took === undefined || took === null ? "" : `${took} ms`;
  const detail = row.querySelector(".detail");
  if (step.error) {
    const reason = document.createElement("span");
    reason.className = "reason";
    reason.textContent = `${step.error.scope} ${step.error.object}: ${step.error.message}`;
    detail.replaceChildren(reason);
  }
}

function setStatus(status, error) {
  document.getElementById("deployment-status").replaceChildren(badge(status));
  const box = document.getElementById("deployment-error");
  if (error && box) {
    box.textContent = `Failed at ${error.step || ""} (${error.scope} ${error.object}): ${error.message}`;
    box.hidden = false;
  }
}

function follow(element) {
  const source = new EventSource(element.dataset.events);
  const progress = document.getElementById("resource-progress");
  source.addEventListener("deployment", (e) => {
    const d = JSON.parse(e.data);
    (d.steps || []).forEach(setStep);
    setStatus(d.status, d.error);
    if (d.status === "succeeded" || d.status === "failed") source.close();
  });
  source.addEventListener("step", (e) => setStep(JSON.parse(e.data)));
  source.addEventListener("resource", (e) => {
    const r = JSON.parse(e.data);
    const id = "progress-" + r.uid;
    let item = document.getElementById(id);
    if (!item) {
      item = document.createElement("li");
      item.id = id;
      progress.append(item);
    }
    const name = document.createElement("code");
    name.textContent = r.uid;
    item.replaceChildren(name, " ", badge(r.status), r.message ? " " + r.message : "");
  });
  source.addEventListener("status", (e) => {
    const s = JSON.parse(e.data);
    setStatus(s.status, s.error);
    if (s.status === "succeeded" || s.status === "failed") source.close();
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) return;
  };
}

function tail(form) {
  const log = document.getElementById("log");
  const stop = form.querySelector(".stop");
  let controller = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (controller) controller.abort();
    controller = new AbortController();
    stop.disabled = false;
    log.textContent = "";
    const workload = form.querySelector("select").value;
    const url = `${form.dataset.logs}?follow=true&workload=${encodeURIComponent(workload)}`;
    try {
      const response = await fetch(url, { signal: controller.signal, credentials: "same-origin" });
      if (!response.ok) {
        log.textContent = `The logs could not be read (${response.status}).`;
        return;
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        log.append(value);
        const lines = log.textContent.split("\n");
        if (lines.length > 2000) log.textContent = lines.slice(-2000).join("\n");
        log.scrollTop = log.scrollHeight;
      }
    } catch (e) {
      if (e.name !== "AbortError") log.append(`\n(the stream ended: ${e.message})\n`);
    } finally {
      stop.disabled = true;
    }
  });
  stop.addEventListener("click", () => {
    if (controller) controller.abort();
    stop.disabled = true;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-events]").forEach(follow);
  document.querySelectorAll("form[data-logs]").forEach(tail);
});
