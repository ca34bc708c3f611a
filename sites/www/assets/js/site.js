// pagi-serve demo site: a light/dark theme switch, copy buttons on code blocks, and the live
// range-request demo of docs/guide/ranges.html. No framework, no build step.
"use strict";

(() => {
  const THEME_KEY = "pagi-theme";
  const root = document.documentElement;

  // ---------- theme ----------

  function preferredTheme() {
    const saved = localStorage.getItem(THEME_KEY);
    if (saved === "light" || saved === "dark") return saved;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function applyTheme(theme) {
    root.dataset.theme = theme;
    const toggle = document.querySelector(".theme-toggle");
    if (toggle) {
      toggle.textContent = theme === "dark" ? "☀ Light" : "☾ Dark";
      toggle.setAttribute("aria-pressed", String(theme === "dark"));
    }
  }

  function setUpThemeToggle() {
    const toggle = document.querySelector(".theme-toggle");
    applyTheme(preferredTheme());
    if (!toggle) return;
    toggle.addEventListener("click", () => {
      const next = root.dataset.theme === "dark" ? "light" : "dark";
      localStorage.setItem(THEME_KEY, next);
      applyTheme(next);
    });
  }

  // ---------- copy buttons ----------

  function setUpCopyButtons() {
    if (!navigator.clipboard) return; // only offered on secure origins such as localhost
    for (const block of document.querySelectorAll("pre > code")) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "copy-button";
      button.textContent = "Copy";
      button.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(block.innerText);
          button.textContent = "Copied";
        } catch {
          button.textContent = "Failed";
        }
        setTimeout(() => (button.textContent = "Copy"), 1500);
      });
      block.parentElement.append(button);
    }
  }

  // ---------- range-request demo ----------

  function hexDump(bytes, firstOffset) {
    const lines = [];
    for (let i = 0; i < bytes.length; i += 16) {
      const row = Array.from(bytes.slice(i, i + 16));
      const hex = row.map((b) => b.toString(16).padStart(2, "0")).join(" ");
      const text = row.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
      lines.push(`${(firstOffset + i).toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  ${text}`);
    }
    return lines.join("\n");
  }

  function setUpRangeDemo() {
    const form = document.querySelector("#range-demo");
    if (!form) return;
    const output = document.querySelector("#range-output");

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const start = Number(form.elements.start.value);
      const end = Number(form.elements.end.value);
      if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end - start > 4095) {
        output.textContent = "Pick 0 ≤ first ≤ last, at most 4096 bytes.";
        return;
      }
      const range = `bytes=${start}-${end}`;
      output.textContent = `GET ${form.dataset.url}\nRange: ${range}\n…`;
      try {
        const response = await fetch(form.dataset.url, { headers: { Range: range }, cache: "no-store" });
        const bytes = new Uint8Array(await response.arrayBuffer());
        const headers = ["Content-Range", "Content-Length", "Accept-Ranges", "ETag"]
          .map((name) => `${name}: ${response.headers.get(name) ?? "—"}`)
          .join("\n");
        const body = response.status === 206 ? hexDump(bytes.slice(0, 256), start) : "(no partial content)";
        const more = response.status === 206 && bytes.length > 256 ? `\n… ${bytes.length - 256} more bytes` : "";
        output.textContent = `HTTP ${response.status} ${response.statusText}\n${headers}\n\n${body}${more}`;
      } catch (error) {
        output.textContent = `Request failed: ${error.message}`;
      }
    });
  }

  // ---------- error page ----------

  function showMissingPath() {
    const slot = document.querySelector("#missing-path");
    if (slot) slot.textContent = window.location.pathname; // textContent: never parsed as HTML
  }

  document.addEventListener("DOMContentLoaded", () => {
    setUpThemeToggle();
    setUpCopyButtons();
    setUpRangeDemo();
    showMissingPath();
  });
})();
