// Certscope's pages work without this file; it adds what only a script can:
// autocomplete, keyboard moves, filters that apply as they are ticked, and the
// dashboard's live updates. No inline script anywhere (the CSP forbids it),
// and every text from the server is set with textContent, never as markup.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // `/` focuses the search box, unless someone is typing somewhere already
  var box = document.getElementById("q");
  document.addEventListener("keydown", function (e) {
    var t = e.target, typing = t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA");
    if (e.key === "/" && !typing && box) { e.preventDefault(); box.focus(); box.select(); }
  });

  // a page restored by the back button shows what its URL says, not the
  // boxes ticked just before leaving it
  window.addEventListener("pageshow", function (e) {
    if (!e.persisted) return;
    document.querySelectorAll("form[data-clean] input, form[data-clean] option").forEach(function (el) {
      if (el.tagName === "OPTION") el.selected = el.defaultSelected;
      else if (el.type === "checkbox") el.checked = el.defaultChecked;
      else el.value = el.defaultValue;
      el.disabled = false;
    });
  });

  // forms send only filled-in fields: URLs stay short and shareable
  document.querySelectorAll("form[data-clean]").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("input, select").forEach(function (el) {
        if (el.name && el.value === "" && el.type !== "checkbox") el.disabled = true;
      });
    });
    form.querySelectorAll("input[type=checkbox], select[data-auto]").forEach(function (el) {
      el.addEventListener("change", function () {
        if (form.requestSubmit) form.requestSubmit(); else form.submit();
      });
    });
  });

  // on a narrow screen the filters start folded (their summary says how
  // many apply), so the results come first
  var filters = document.getElementById("filters");
  if (filters && window.matchMedia && window.matchMedia("(max-width: 48rem)").matches) filters.removeAttribute("open");

  // arrows move through the results
  var results = Array.prototype.slice.call(document.querySelectorAll("ol.results h2 a"));
  results.forEach(function (a, i) {
    a.addEventListener("keydown", function (e) {
      var next = e.key === "ArrowDown" ? results[i + 1] : e.key === "ArrowUp" ? results[i - 1] : null;
      if (e.key === "ArrowUp" && i === 0 && box) next = box;
      if (next) { e.preventDefault(); next.focus(); }
    });
  });

  // autocomplete from /ui/suggest, as a listbox the arrows move through
  var list = document.getElementById("suggestions");
  if (box && list) {
    var items = [], active = -1, timer = null, asked = "";
    var hrefs = { certification: "/certifications/", requirement: "/requirements/", evidence: "/evidence/", risk: "/risks/" };
    var close = function () { list.hidden = true; box.setAttribute("aria-expanded", "false"); box.removeAttribute("aria-activedescendant"); active = -1; };
    var mark = function (i) {
      items.forEach(function (li, j) { li.setAttribute("aria-selected", j === i ? "true" : "false"); });
      active = i;
      if (i >= 0) box.setAttribute("aria-activedescendant", items[i].id); else box.removeAttribute("aria-activedescendant");
    };
    var choose = function (li) {
      var href = li.getAttribute("data-href");
      if (href) { window.location.href = href; return; }
      box.value = li.getAttribute("data-text");
      close();
      box.form.requestSubmit ? box.form.requestSubmit() : box.form.submit();
    };
    var show = function (suggestions) {
      list.textContent = "";
      items = suggestions.map(function (s, i) {
        var li = document.createElement("li");
        li.id = "suggestion-" + i;
        li.setAttribute("role", "option");
        var badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = s.kind === "control" ? "control" : s.kind;
        li.appendChild(badge);
        li.appendChild(document.createTextNode((s.control ? s.control + " " : "") + (s.title || "")));
        if (hrefs[s.kind] && s.id) li.setAttribute("data-href", hrefs[s.kind] + s.id);
        li.setAttribute("data-text", s.control || s.title || "");
        li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(li); });
        list.appendChild(li);
        return li;
      });
      list.hidden = items.length === 0;
      box.setAttribute("aria-expanded", items.length ? "true" : "false");
      mark(-1);
    };
    box.addEventListener("input", function () {
      clearTimeout(timer);
      var q = box.value.trim();
      if (q.length < 2) { close(); return; }
      timer = setTimeout(function () {
        asked = q;
        fetch("/ui/suggest?limit=8&q=" + encodeURIComponent(q), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : { suggestions: [] }; })
          .then(function (body) { if (asked === box.value.trim()) show(body.suggestions || []); })
          .catch(close);
      }, 120);
    });
    box.addEventListener("keydown", function (e) {
      if (list.hidden) {
        if (e.key === "ArrowDown" && results.length) { e.preventDefault(); results[0].focus(); }
        return;
      }
      if (e.key === "ArrowDown") { e.preventDefault(); mark(Math.min(active + 1, items.length - 1)); }
      else if (e.key === "ArrowUp") { e.preventDefault(); mark(Math.max(active - 1, -1)); }
      else if (e.key === "Escape") { close(); }
      else if (e.key === "Enter" && active >= 0) { e.preventDefault(); choose(items[active]); }
    });
    box.addEventListener("blur", function () { setTimeout(close, 150); });
  }

  // the dashboard, live: a ticket, then the event stream; figures refreshed
  // after each change; resumes after a drop from the last event id it saw
  var live = document.querySelector("[data-live]");
  if (live && window.EventSource) {
    var feed = document.getElementById("feed");
    var state = live.querySelector("[data-state-text]");
    var lastId = null, source = null, wait = 1000, refreshTimer = null;
    var kinds = ["certification.status_changed", "requirement.status_changed", "evidence.submitted",
      "evidence.reviewed", "evidence.expired", "risk.created", "risk.changed", "notice"];
    var setState = function (s, words) { live.setAttribute("data-state", s); state.textContent = words; };
    var describe = function (kind, d) {
      var p = d.data || d, what = p.control ? p.control + " " + (p.title || "") : (p.title || p.name || p.message || "");
      var change = p.previous !== undefined && p.status !== undefined ? ": " + (p.previous || "new") + " → " + (p.status || "removed") : "";
      return kind.replace(".", " ").replace("_", " ") + " — " + what + change;
    };
    var refresh = function (attempt) {
      var target = document.getElementById("kpis");
      if (!target) return;
      attempt = attempt || 0;
      fetch("/dashboard/kpis" + window.location.search, { credentials: "same-origin" })
        .then(function (r) {
          // 503: the index has not caught up yet; ask again shortly
          if (r.status === 503 && attempt < 10) { refreshTimer = setTimeout(function () { refresh(attempt + 1); }, 300); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (html === null) return;
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("kpis");
          if (fresh && fresh.innerHTML !== target.innerHTML) {
            target.replaceWith(fresh);
            fresh.querySelectorAll(".tile").forEach(function (t) { t.classList.add("changed"); });
          }
        }).catch(function () {});
    };
    var changed = function () {
      // the server answers once its index holds the change; a burst of
      // events makes one refresh
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(refresh, 150);
    };
    var onEvent = function (e) {
      if (e.lastEventId) lastId = e.lastEventId;
      var d = {};
      try { d = JSON.parse(e.data); } catch (x) { return; }
      var li = document.createElement("li");
      var t = document.createElement("time");
      t.textContent = new Date().toLocaleTimeString();
      li.appendChild(t);
      li.appendChild(document.createTextNode(describe(e.type, d)));
      feed.insertBefore(li, feed.firstChild);
      while (feed.children.length > 50) feed.removeChild(feed.lastChild);
      changed();
    };
    var connect = function () {
      fetch("/ui/events/ticket", { method: "POST", credentials: "same-origin", headers: { "x-csrf-token": csrf } })
        .then(function (r) {
          if (r.status === 401 || r.status === 403) { setState("ended", "Signed out: reload the page to sign in again"); return null; }
          if (!r.ok) throw new Error("ticket " + r.status);
          return r.json();
        })
        .then(function (t) {
          if (!t) return;
          var url = "/v1/events/stream?rooms=" + encodeURIComponent(t.rooms) + "&ticket=" + encodeURIComponent(t.ticket);
          if (lastId) url += "&last_event_id=" + encodeURIComponent(lastId);
          source = new EventSource(url);
          source.onopen = function () { wait = 1000; setState("live", "Live"); if (lastId) changed(); };
          kinds.forEach(function (k) { source.addEventListener(k, onEvent); });
          source.addEventListener("resync", function () { changed(); });
          source.onerror = function () { source.close(); retry(); };
        })
        .catch(retry);
    };
    var retry = function () {
      setState("reconnecting", "Reconnecting…");
      setTimeout(connect, wait);
      wait = Math.min(wait * 2, 15000);
    };
    window.addEventListener("offline", function () { if (source) { source.close(); source = null; retry(); } });
    window.addEventListener("online", function () { wait = 500; });
    setState("connecting", "Connecting…");
    connect();
  }
})();
