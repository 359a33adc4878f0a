// The requirement editor's live count: as the add-requirement form is edited, ask the server how
// many learners' stored events earn the badge with the draft requirement added
// (POST /admin/templates/{id}/would-hold, answered from the server's last read of the inbox).
// Without this script the form's "Count who would hold it" button asks the same.
(function () {
  "use strict";
  var out = document.getElementById("would-hold");
  var note = document.getElementById("would-hold-note");
  var form = document.getElementById("req-form");
  if (!out || !form) {
    return;
  }
  var timer = null;
  var asked = 0;
  function count() {
    var n = ++asked;
    var body = new URLSearchParams(new FormData(form));
    out.setAttribute("aria-busy", "true");
    fetch(out.dataset.url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    })
      .then(function (r) { return r.json(); })
      .then(function (a) {
        if (n !== asked) {
          return; // a newer edit has been sent
        }
        out.removeAttribute("aria-busy");
        if (a.error) {
          note.textContent = "(" + a.error + ")";
          return;
        }
        out.textContent = a.would_hold + " learners";
        note.textContent = (a.with_draft ? "with this requirement; " : "") +
          "of " + a.learners + " with events of its types (" + a.elapsed_ms + " ms)";
      })
      .catch(function () {
        out.removeAttribute("aria-busy");
        note.textContent = "(could not count)";
      });
  }
  function later() {
    clearTimeout(timer);
    timer = setTimeout(count, 400);
  }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  count();
})();
