// srjobs admin: live fragments, local-time hovers, schedule preview. No inline script (CSP).
(function () {
  "use strict";

  var zone = (Intl.DateTimeFormat().resolvedOptions().timeZone) || "local time";

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) {
        el.title = when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }) + " (" + zone + ")";
      }
    });
  }

  // Elements with data-refresh="/fragments/..." reload their content every few seconds.
  function startRefresh(el) {
    var every = parseInt(el.getAttribute("data-every") || "4", 10) * 1000;
    var busy = false;
    setInterval(function () {
      if (busy || document.hidden) { return; }
      busy = true;
      fetch(el.getAttribute("data-refresh"), { headers: { "Accept": "text/html" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null && html !== el.dataset.last) {
            el.dataset.last = html;
            el.innerHTML = html;
            localTimes(el);
          }
        })
        .catch(function () { /* keep the last good content */ })
        .finally(function () { busy = false; });
    }, every);
  }

  function schedulePreview(form) {
    var cron = form.querySelector("#cron");
    var tz = form.querySelector("#timezone");
    var message = form.querySelector("#preview-message");
    var list = form.querySelector("#preview-times");
    var timer = null;
    var seq = 0;

    function show(ok, text, times) {
      message.textContent = text;
      message.className = "msg " + (ok ? "good" : "bad");
      cron.classList.toggle("invalid", !ok);
      list.innerHTML = "";
      (times || []).forEach(function (t) {
        var li = document.createElement("li");
        var el = document.createElement("time");
        el.setAttribute("datetime", t);
        el.textContent = t.replace("T", " ");
        li.appendChild(el);
        list.appendChild(li);
      });
      localTimes(list);
    }

    function check() {
      var mine = ++seq;
      var url = form.getAttribute("data-preview") + "?cron=" + encodeURIComponent(cron.value) +
        "&timezone=" + encodeURIComponent(tz.value || "UTC");
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.json().then(function (body) { return [r.ok, body]; }); })
        .then(function (res) {
          if (mine !== seq) { return; }
          if (res[0]) { show(true, res[1].description, res[1].next_fire_times); }
          else { show(false, res[1].error || "invalid schedule", []); }
        })
        .catch(function () { /* offline: the server checks on save */ });
    }

    function later() { clearTimeout(timer); timer = setTimeout(check, 250); }
    cron.addEventListener("input", later);
    tz.addEventListener("input", later);
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    document.querySelectorAll("[data-refresh]").forEach(startRefresh);
    document.querySelectorAll("form[data-preview]").forEach(schedulePreview);
  });
})();
