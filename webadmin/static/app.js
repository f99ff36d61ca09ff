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

  // The actor's parameters: shown under the select, and used to check the args as typed.
  function paramsOf(select, field) {
    if (select) {
      var opt = select.options[select.selectedIndex];
      return opt ? JSON.parse(opt.getAttribute("data-params") || "[]") : [];
    }
    var raw = field.getAttribute("data-params");
    return raw ? JSON.parse(raw) : null;
  }

  function argsProblem(text, params) {
    var value;
    try { value = JSON.parse(text.trim() || "{}"); }
    catch (e) { return "args is not valid JSON: " + e.message; }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return "args must be a JSON object of keyword arguments, such as {\"view\": \"my_view\"}";
    }
    if (!params) { return null; }
    var names = params.map(function (p) { return p.name; });
    var unknown = Object.keys(value).filter(function (k) { return names.indexOf(k) < 0; });
    if (unknown.length) {
      return "args: unknown argument " + unknown.join(", ") + " (takes " + (names.join(", ") || "no arguments") + ")";
    }
    var missing = params.filter(function (p) { return p.required && !(p.name in value); })
      .map(function (p) { return p.name; });
    if (missing.length) { return "args: missing required argument " + missing.join(", "); }
    return null;
  }

  function argsEditor(field) {
    var form = field.form;
    var select = form.querySelector("[data-actor-select]");
    var message = form.querySelector("#args-message");
    var help = form.querySelector("#actor-help");
    var list = form.querySelector("#actor-params");
    var hint = message.innerHTML;

    function check() {
      var problem = argsProblem(field.value, paramsOf(select, field));
      field.classList.toggle("invalid", !!problem);
      message.classList.toggle("bad", !!problem);
      if (problem) { message.textContent = problem; } else { message.innerHTML = hint; }
      return !problem;
    }

    function showActor() {
      var opt = select.options[select.selectedIndex];
      if (!opt) { return; }
      help.textContent = opt.getAttribute("data-description") || "";
      list.innerHTML = "";
      var params = paramsOf(select, field);
      if (!params.length) {
        var none = document.createElement("li");
        none.className = "muted";
        none.textContent = "takes no arguments";
        list.appendChild(none);
      }
      params.forEach(function (p) {
        var li = document.createElement("li");
        var code = document.createElement("code");
        code.textContent = p.name;
        li.appendChild(code);
        li.appendChild(document.createTextNode(p.required ? " required" : " optional"));
        list.appendChild(li);
      });
      check();
    }

    field.addEventListener("input", check);
    if (select) { select.addEventListener("change", showActor); }
    form.addEventListener("submit", function (ev) {
      if (!check()) { ev.preventDefault(); field.focus(); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    document.querySelectorAll("[data-refresh]").forEach(startRefresh);
    document.querySelectorAll("form[data-preview]").forEach(schedulePreview);
    document.querySelectorAll("textarea[data-args]").forEach(argsEditor);
  });
})();
