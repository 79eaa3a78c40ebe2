// Live refresh for the memory inspector: poll a small JSON endpoint and swap in
// the page body the server re-rendered (already escaped there) when it changed.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var status = document.getElementById("live-status");
  if (!live || !live.dataset.live) {
    return;
  }
  var url = live.dataset.live;
  var revision = live.dataset.revision;
  var interval = Number(live.dataset.interval) || 2000;

  function show(text, kind) {
    if (status) {
      status.textContent = text;
      status.className = "live " + kind;
    }
  }

  // Keep what the reader opened (details) and filtered across a refresh.
  function openDetails() {
    var ids = [];
    live.querySelectorAll("details[open][id]").forEach(function (el) { ids.push(el.id); });
    return ids;
  }

  function reopen(ids) {
    ids.forEach(function (id) {
      var el = document.getElementById(id);
      if (el) { el.open = true; }
    });
  }

  var filter = "";

  function applyFilter() {
    live.querySelectorAll("[data-filter]").forEach(function (button) {
      button.classList.toggle("on", button.dataset.filter === filter);
    });
    live.querySelectorAll("#timeline > li.version").forEach(function (item) {
      item.hidden = filter !== "" && item.dataset.label !== filter;
    });
  }

  live.addEventListener("click", function (event) {
    var button = event.target.closest("[data-filter]");
    if (button) {
      filter = button.dataset.filter;
      applyFilter();
    }
  });

  function poll() {
    var separator = url.indexOf("?") < 0 ? "?" : "&";
    fetch(url + separator + "since=" + encodeURIComponent(revision), {
      cache: "no-store",
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        if (data.revision !== revision && typeof data.html === "string") {
          var opened = openDetails();
          live.innerHTML = data.html;
          revision = data.revision;
          live.dataset.revision = revision;
          reopen(opened);
          applyFilter();
          show("updated " + new Date().toLocaleTimeString(), "fresh");
        } else {
          show("live", "");
        }
      })
      .catch(function () { show("offline: retrying", "bad"); })
      .then(function () { window.setTimeout(poll, interval); });
  }

  window.setTimeout(poll, interval);
}());
