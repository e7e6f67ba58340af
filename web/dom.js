// DOM helpers shared by every view: `h()` builds elements (never innerHTML, so titles and tags from the API
// cannot inject markup), the page frame (heading focus, title), the live status region and the alert, and the
// formatters. No state of its own: the session lives in app.js.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

// A labelled form field, with an optional hint the input is described by.
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const nodes = [h("label", { for: id }, label), input];
  if (hint) {
    const hintId = `${id}-hint`;
    input.setAttribute("aria-describedby", hintId);
    nodes.push(h("p", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, ...nodes);
}

// Replace the main content; the new heading takes focus so screen readers start reading the new page. Like h(),
// it skips null, undefined and false (a part the page leaves out), which replaceChildren would print as text.
export function page(title, ...content) {
  const heading = h("h1", { tabindex: "-1", id: "page-title" }, title);
  const parts = content.filter((part) => part !== null && part !== undefined && part !== false);
  document.getElementById("main").replaceChildren(heading, ...parts);
  document.title = `${title} · PhotoSky`;
  heading.focus();
  return heading;
}

export function announce(message) {
  const status = document.getElementById("status");
  // Cleared first so the same message twice is read twice.
  status.textContent = "";
  setTimeout(() => {
    status.textContent = message;
  }, 50);
}

// Any failure the server says may be retried later (Retry-After on a 503 or a 429) says when.
export function messageOf(error) {
  const message = error && error.message ? error.message : String(error);
  if (error && error.retryAfter) return `${message} (try again in ${formatWait(error.retryAfter)})`;
  return message;
}

// `more`: nodes after the message (a link to what the error is about).
export function showError(error, ...more) {
  const alert = document.getElementById("alert");
  alert.replaceChildren(messageOf(error), ...more);
  alert.hidden = false;
}

export function clearError() {
  const alert = document.getElementById("alert");
  alert.hidden = true;
  alert.textContent = "";
}

// Disable a form's controls while its request is in flight.
export function busy(form, isBusy) {
  for (const control of form.querySelectorAll("button, input, textarea, select")) control.disabled = isBusy;
  form.setAttribute("aria-busy", String(isBusy));
}

// Ask before something that cannot be undone: index.html's one modal dialog, worded for this action. Resolves true
// only for the confirm button (Escape and Cancel resolve false).
export function confirmAction({ title, text, action }) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  dialog.querySelector('button[value="confirm"]').textContent = action;
  return new Promise((resolve) => {
    dialog.returnValue = "cancel";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}

// Copy a read-only field's text; where the clipboard API is refused (no permission, not a secure context) the text is
// selected instead, for the user's own Ctrl+C.
export async function copyField(input) {
  try {
    await navigator.clipboard.writeText(input.value);
    announce("Copied to the clipboard.");
  } catch {
    input.focus();
    input.select();
    announce("Selected: press Ctrl+C (or ⌘C) to copy.");
  }
}

export function formatBytes(bytes) {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} ${units[0]}` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatDate(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

// A day without the time (when the trash removes a photo for good).
export function formatDay(iso) {
  return iso ? new Date(iso).toLocaleDateString(undefined, { year: "numeric", month: "long", day: "numeric" }) : "—";
}

export function formatWait(seconds) {
  return seconds < 120 ? `${seconds} s` : `${Math.ceil(seconds / 60)} min`;
}

// "GIF, JPEG or WebP" from the server's accepted content types (how people spell a subtype, when not in capitals).
const SUBTYPE_NAMES = { webp: "WebP" };
export function formatTypes(contentTypes) {
  const names = contentTypes.map((type) => {
    const subtype = type.split("/").pop();
    return SUBTYPE_NAMES[subtype] || subtype.toUpperCase();
  });
  return names.length > 1 ? `${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}` : names.join("");
}

export function photoName(photo) {
  return photo.title || photo.filename;
}
