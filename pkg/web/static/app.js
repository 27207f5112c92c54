// scribeq console: the little script the pages need. Everything works
// without it except live updates and the player's word sync.
"use strict";

(function () {
  // Times are rendered in UTC; show them in the reader's zone.
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) {
        el.title = el.textContent;
        el.textContent = d.toLocaleString();
      }
    });
  }

  // Overview: swap in a fresh copy of the live part every few seconds.
  function live() {
    var box = document.getElementById("live");
    if (!box) return;
    var src = box.dataset.live, every = parseInt(box.dataset.every, 10) || 3000;
    var status = document.getElementById("live-status");
    var timer = null, failures = 0;
    function schedule() {
      clearTimeout(timer);
      if (!document.hidden) timer = setTimeout(tick, every);
    }
    function tick() {
      fetch(src, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "text/html" } })
        .then(function (res) {
          if (res.status === 401) { location.reload(); return null; }
          if (!res.ok) throw new Error("HTTP " + res.status);
          return res.text();
        })
        .then(function (html) {
          if (html === null) return;
          // Keep the keyboard focus on the same link across the swap.
          var focused = box.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
          box.innerHTML = html;
          localTimes(box);
          if (focused) {
            var again = box.querySelector('a[href="' + CSS.escape(focused) + '"]');
            if (again) again.focus();
          }
          failures = 0;
          if (status) {
            status.classList.remove("stale");
            status.textContent = "Updated " + new Date().toLocaleTimeString();
          }
        })
        .catch(function () {
          failures++;
          if (status && failures > 1) {
            status.classList.add("stale");
            status.textContent = "Cannot reach the console; retrying…";
          }
        })
        .finally(schedule);
    }
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) tick();
      else clearTimeout(timer);
    });
    schedule();
  }

  // Job page: the player and the transcript follow each other.
  function player() {
    var audio = document.getElementById("player");
    var tr = document.getElementById("transcript");
    var words = tr ? Array.prototype.slice.call(tr.querySelectorAll(".w[data-s]")) : [];
    var starts = words.map(function (w) { return parseFloat(w.dataset.s); });
    var current = null;

    // The last word that starts at or before t.
    function wordAt(t) {
      var lo = 0, hi = starts.length - 1, found = -1;
      while (lo <= hi) {
        var mid = (lo + hi) >> 1;
        if (starts[mid] <= t + 0.01) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
      }
      return found;
    }
    function highlight(t, scroll) {
      var i = wordAt(t);
      var w = i >= 0 ? words[i] : null;
      if (w === current) return;
      if (current) current.classList.remove("now");
      current = w;
      if (!w) return;
      w.classList.add("now");
      if (scroll) {
        var r = w.getBoundingClientRect();
        if (r.top < 80 || r.bottom > window.innerHeight - 20) w.scrollIntoView({ block: "center", behavior: "smooth" });
      }
    }
    function seek(t, play) {
      if (!audio) { highlight(t, true); return; }
      audio.currentTime = t;
      highlight(t, true);
      if (play) {
        var p = audio.play();
        if (p && p.catch) p.catch(function () {});
      }
    }

    if (tr) {
      tr.addEventListener("click", function (e) {
        var ts = e.target.closest(".ts");
        var w = e.target.closest(".w[data-s]");
        if (ts && audio) {
          e.preventDefault();
          seek(parseFloat(ts.dataset.t), true);
          history.replaceState(null, "", "?t=" + ts.dataset.t);
        } else if (w && audio) {
          seek(parseFloat(w.dataset.s), true);
        }
      });
    }
    if (!audio) {
      var only = tr ? parseFloat(tr.dataset.cue) : NaN;
      if (!isNaN(only)) { highlight(only, false); if (current) current.scrollIntoView({ block: "center" }); }
      return;
    }

    var frame = 0;
    function follow() {
      highlight(audio.currentTime, true);
      if (!audio.paused) frame = requestAnimationFrame(follow);
    }
    audio.addEventListener("play", function () { cancelAnimationFrame(frame); frame = requestAnimationFrame(follow); });
    audio.addEventListener("seeked", function () { highlight(audio.currentTime, false); });
    audio.addEventListener("timeupdate", function () { if (audio.paused) highlight(audio.currentTime, false); });

    // ?t=SECONDS from a search hit: cue the player there.
    var cue = parseFloat(audio.dataset.cue);
    if (!isNaN(cue)) {
      highlight(cue, false);
      if (current) current.scrollIntoView({ block: "center" });
      var apply = function () { audio.currentTime = cue; };
      if (audio.readyState >= 1) apply();
      else audio.addEventListener("loadedmetadata", apply, { once: true });
    }
  }

  function confirms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (e) {
        if (!window.confirm(f.dataset.confirm)) e.preventDefault();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    live();
    player();
    confirms();
  });
})();
