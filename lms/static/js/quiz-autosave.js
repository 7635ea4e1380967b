/* Roll Call: save each quiz choice on the server as the member makes it.
 *
 * Served from /static (the CSP allows scripts from this site only; no inline script). Without
 * JavaScript the form's "Save answers" button does the same for the whole form. Each change
 * posts that question's choices with the page's CSRF token; the status line says what happened.
 */
(function () {
  "use strict";
  var form = document.querySelector("form[data-save-url]");
  if (!form) { return; }
  var url = form.getAttribute("data-save-url");
  var status = document.getElementById("save-status");
  var token = form.querySelector("input[name=csrf_token]");
  var queue = Promise.resolve();

  function say(text, failed) {
    if (!status) { return; }
    status.textContent = text;
    status.classList.toggle("save-failed", !!failed);
  }

  function time() {
    return new Date().toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
  }

  function save(position) {
    var body = new FormData();
    body.append("csrf_token", token ? token.value : "");
    body.append("positions", position);
    var inputs = form.querySelectorAll("input[name='q" + position + "']:checked");
    for (var i = 0; i < inputs.length; i += 1) { body.append("q" + position, inputs[i].value); }
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin", redirect: "manual",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      var json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
      if (response.ok && json) {
        return response.json().then(function (data) {
          say("Answer to question " + position + " saved at " + time() + " (" + data.saved + " of " +
              data.total + " answered).");
          document.dispatchEvent(new CustomEvent("rollcall:session-touched",
            { detail: { secondsLeft: data.seconds_left } }));
        });
      }
      if (response.type === "opaqueredirect" || response.status === 0) {
        say("Your session has ended, so question " + position + " was not saved. Reload the page " +
            "and sign in again: the answers saved before are kept.", true);
        document.dispatchEvent(new CustomEvent("rollcall:session-ended"));
        return null;
      }
      say("Question " + position + " could not be saved (the server answered " + response.status +
          "). Use the Save answers button.", true);
      return null;
    }).catch(function () {
      say("Question " + position + " could not be saved: no connection. Your choice stays on this " +
          "page; it is saved with the next choice or with the Save answers button.", true);
    });
  }

  form.addEventListener("change", function (event) {
    var name = event.target && event.target.name;
    var match = /^q(\d+)$/.exec(name || "");
    if (!match) { return; }
    // One save at a time, in order, so the last choice is the one kept.
    queue = queue.then(function () { return save(match[1]); });
  });
}());
