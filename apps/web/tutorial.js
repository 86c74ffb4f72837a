// apps/web/tutorial.js — the page at /tutorial: docs/tutorial.md (served as /static/tutorial.md)
// rendered with common.js's markdown. Its links to the explorer are written for the default
// address (http://127.0.0.1:8765/#...); they are pointed at this server, wherever it listens.

"use strict";

const TUTORIAL_URL = "/static/tutorial.md";

const DEFAULT_ADDRESS = /^http:\/\/(127\.0\.0\.1|localhost):8765(?=[/?#]|$)/;

// The tutorial's addresses as this server has them: http://127.0.0.1:8765/#… (or localhost) →
// this page's origin; a file relative to docs/ (figures/tape-qq.svg) → /static/tape-qq.svg,
// since /static/ holds the built-in files by their base name.
function toThisServer(url) {
  if (DEFAULT_ADDRESS.test(url)) return url.replace(DEFAULT_ADDRESS, location.origin);
  if (/^[a-z][a-z0-9+.-]*:/i.test(url) || url.startsWith("/") || url.startsWith("#")) return url;
  return "/static/" + url.split(/[?#]/)[0].split("/").pop();
}

// An image this binary does not hold shows its description instead of a broken icon.
function describeMissingImages(article) {
  for (const img of article.querySelectorAll("img"))
    img.addEventListener("error", () => {
      img.replaceWith(el("span", {class: "note"}, `[figure: ${img.alt || img.getAttribute("src")}]`));
    });
}

async function showTutorial() {
  const article = document.getElementById("tutorial");
  try {
    const text = await fetchText(TUTORIAL_URL);
    article.innerHTML = renderMarkdown(text, {rewriteURL: toThisServer});
    describeMissingImages(article);
    const heading = article.querySelector("h1");
    if (heading) document.title = "attnlab — " + heading.textContent;
    if (location.hash) {  // #3-what-sharing-the-projection-does: the heading exists only now
      const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
      if (target) target.scrollIntoView();
    }
  } catch (error) {
    article.textContent = "";
    showError(document.getElementById("tutorial-error"), error);
  }
}

showTutorial();
