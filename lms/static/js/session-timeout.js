/* Roll Call: warn before the idle sign-out and offer to stay signed in (WCAG 2.2.1).
 *
 * The warning is a non-modal alert dialog in the page (hidden until needed). "Stay signed in"
 * posts to the server, which marks the session as seen; without JavaScript the same button
 * posts the form and comes back to the page. When the time runs out the dialog says so and
 * offers to sign in again, coming back to this page.
 */
(function () {
  "use strict";
  var box = document.getElementById("session-warning");
  if (!box) { return; }
  var form = box.querySelector("form");
  var button = box.querySelector("[data-stay]");
  var text = document.getElementById("session-warning-text");
  var title = document.getElementById("session-warning-title");
  var warnSeconds = Number(box.getAttribute("data-warn-seconds"));
  var deadline = Date.now() + Number(box.getAttribute("data-seconds-left")) * 1000;
  var returnFocus = null;
  var ended = false;
  var ENDED_AFTER_MS = 2000;

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: "numeric", minute: "2-digit", second: "2-digit" });
  }

  function show() {
    if (!box.hidden) { return; }
    text.textContent = "For your security you will be signed out at " + clock(deadline) +
      " because nothing has happened on this page for a while. Answers you chose are saved.";
    returnFocus = document.activeElement;
    box.hidden = false;
    button.focus();
  }

  function hide() {
    box.hidden = true;
    if (returnFocus && document.contains(returnFocus)) { returnFocus.focus(); }
  }

  function signedOut() {
    if (ended) { return; }
    ended = true;
    var here = window.location.pathname + window.location.search;
    title.textContent = "You have been signed out";
    text.textContent = "Nothing happened on this page for a while, so you were signed out. " +
      "Answers you chose are saved: sign in again to go on where you were.";
    var link = document.createElement("a");
    link.className = "button";
    link.href = box.getAttribute("data-sign-in-url") + "?next=" + encodeURIComponent(here);
    link.textContent = "Sign in again";
    form.replaceWith(link);
    if (box.hidden) { returnFocus = document.activeElement; box.hidden = false; }
    link.focus();
  }

  function tick() {
    if (ended) { return; }
    var left = deadline - Date.now();
    // The server ends the session at the deadline; the page says so a moment later, so that what
    // it says is already true (the clocks and the request's own time differ by a little).
    if (left <= -ENDED_AFTER_MS) { signedOut(); } else if (left <= warnSeconds * 1000) { show(); }
  }

  document.addEventListener("rollcall:session-touched", function (event) {
    var seconds = event.detail && event.detail.secondsLeft;
    if (typeof seconds === "number" && !ended) {
      deadline = Date.now() + seconds * 1000;
      if (!box.hidden && seconds > warnSeconds) { hide(); }
    }
  });
  document.addEventListener("rollcall:session-ended", signedOut);

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    fetch(form.action, {
      method: "POST", body: new FormData(form), credentials: "same-origin", redirect: "manual",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      if (!response.ok) { signedOut(); return null; }
      return response.json().then(function (data) {
        deadline = Date.now() + data.seconds_left * 1000;
        hide();
      });
    }).catch(function () {
      text.textContent = "The server could not be reached to keep you signed in. Check the connection " +
        "and try again; answers you chose are saved.";
    });
  });

  window.setInterval(tick, 1000);
  tick();
}());
