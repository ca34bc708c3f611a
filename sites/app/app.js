// A tiny single-page app with history routing. The server knows nothing of /app/notes/2:
// the route's `fallback: /index.html` answers every unknown path under /app/ with index.html,
// and this script draws the right view from location.pathname.
"use strict";

const BASE = "/app";

const NOTES = [
  { title: "Routes are sorted by specificity", text: "A literal segment beats {param}, which beats {rest...}; the order in the file does not matter." },
  { title: "Reload this page", text: "Press F5 on any note: the server has no file for it, yet you get 200 and the same view, thanks to fallback." },
  { title: "Real files still win", text: "/app/app.js is a real file, so it is served as JavaScript, never replaced by the fallback." },
];

function escapeHTML(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

const views = [
  {
    pattern: /^\/?(index\.html)?$/,
    title: "Notes",
    render: () =>
      `<h1>Notes</h1>` +
      NOTES.map((note, i) => `<div class="note"><a href="${BASE}/notes/${i + 1}" data-link>${escapeHTML(note.title)}</a></div>`).join("") +
      `<p class="hint">Click a note, then reload: the URL keeps working.</p>`,
  },
  {
    pattern: /^\/notes\/(\d+)$/,
    title: "Note",
    render: ([id]) => {
      const note = NOTES[Number(id) - 1];
      if (!note) return notFound();
      return `<h1>${escapeHTML(note.title)}</h1><p>${escapeHTML(note.text)}</p>` +
        `<p><a href="${BASE}/" data-link>← All notes</a></p>`;
    },
  },
  {
    pattern: /^\/about$/,
    title: "About",
    render: () =>
      `<h1>About this demo</h1>
       <p>This app is two files, <code>index.html</code> and <code>app.js</code>, served by this route:</p>
       <pre><code>- path: /app/
  static: {root: sites/app, fallback: /index.html}</code></pre>
       <p>Current path: <code>${escapeHTML(location.pathname)}</code></p>`,
  },
];

function notFound() {
  return `<h1>No such note</h1><p>The server answered 200 (fallback); this app decides what is missing.</p>` +
    `<p><a href="${BASE}/" data-link>← All notes</a></p>`;
}

function render() {
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : location.pathname;
  let html = notFound();
  let title = "Not found";
  for (const view of views) {
    const match = path.match(view.pattern);
    if (match) {
      html = view.render(match.slice(1));
      title = view.title;
      break;
    }
  }
  document.querySelector("#view").innerHTML = html;
  document.title = `${title} — Sunrise Notes`;
  for (const link of document.querySelectorAll("nav a[data-link]")) {
    const current = link.pathname === location.pathname || (link.pathname === `${BASE}/` && path.startsWith("/notes/"));
    link.toggleAttribute("aria-current", current);
    if (current) link.setAttribute("aria-current", "page");
  }
}

// Same-app links change the URL with pushState instead of asking the server.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-link]");
  if (!link || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  if (link.pathname !== location.pathname) history.pushState(null, "", link.pathname);
  render();
});

window.addEventListener("popstate", render);
document.addEventListener("DOMContentLoaded", render);
