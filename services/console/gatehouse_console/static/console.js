// Progressive enhancement only: every page works without this file.
"use strict";

// A table whose rows are still changing (targets being created or synchronized) refreshes itself
// from the same page's fragment until none is.
function refreshWhileBusy(tbody) {
  const url = tbody.dataset.refresh;
  const tick = async () => {
    if (!tbody.querySelector("[data-busy]")) return;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (response.ok) tbody.innerHTML = await response.text();
    } catch (e) {
      // offline for a moment: try again at the next tick
    }
    setTimeout(tick, 1500);
  };
  setTimeout(tick, 1500);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("tbody[data-refresh]").forEach(refreshWhileBusy);
  // "Continue" to a provider: one click less (a link, so no form-action rule is involved)
  const next = document.querySelector("a[data-auto]");
  if (next) window.location.assign(next.href);
});
