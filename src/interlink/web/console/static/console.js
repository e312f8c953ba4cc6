// Interlink console: refreshes live counters every few seconds. Everything works without it.
(function () {
  "use strict";
  var holder = document.querySelector("[data-live]");
  if (!holder || !window.fetch) return;
  var url = holder.getAttribute("data-live");
  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        document.querySelectorAll("[data-total]").forEach(function (el) {
          var v = data.totals[el.getAttribute("data-total")];
          if (v !== undefined) el.textContent = v;
        });
        document.querySelectorAll("[data-flow][data-count]").forEach(function (el) {
          var flow = data.status.flows[el.getAttribute("data-flow")];
          if (!flow) return;
          var name = el.getAttribute("data-count");
          var v = name === "pending" ? flow.pending + flow.in_flight : flow[name];
          if (v !== undefined) el.textContent = v;
        });
        holder.classList.add("live-dot");
      })
      .catch(function () { holder.classList.remove("live-dot"); });
  }
  setInterval(refresh, 5000);
})();
