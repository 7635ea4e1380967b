/* Passkeys (WebAuthn): the browser side of registering one and of signing in with one.
   A button with data-passkey="register" or "sign-in" names the URL that gives the options
   (data-options), the URL that checks the answer (data-verify), the CSRF token (data-csrf) and
   the element that tells the member what happens (data-status). No inline script: the CSP
   forbids it, so this file is loaded with <script src>. */
(function () {
  "use strict";

  function toBuffer(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var bytes = atob(base64), out = new Uint8Array(bytes.length);
    for (var i = 0; i < bytes.length; i++) { out[i] = bytes.charCodeAt(i); }
    return out.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer), binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function post(url, token, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": token},
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (data.redirect) { window.location.assign(data.redirect); }
        if (!response.ok) { throw new Error(data.error || "Something went wrong; try again."); }
        return data;
      });
    });
  }

  function creationOptions(options) {
    options.challenge = toBuffer(options.challenge);
    options.user.id = toBuffer(options.user.id);
    (options.excludeCredentials || []).forEach(function (c) { c.id = toBuffer(c.id); });
    return options;
  }

  function requestOptions(options) {
    options.challenge = toBuffer(options.challenge);
    (options.allowCredentials || []).forEach(function (c) { c.id = toBuffer(c.id); });
    return options;
  }

  function asJSON(credential) {
    var r = credential.response;
    var out = {id: credential.id, rawId: toText(credential.rawId), type: credential.type,
               clientExtensionResults: credential.getClientExtensionResults(),
               authenticatorAttachment: credential.authenticatorAttachment || null,
               response: {clientDataJSON: toText(r.clientDataJSON)}};
    if (r.attestationObject) {
      out.response.attestationObject = toText(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = toText(r.authenticatorData);
      out.response.signature = toText(r.signature);
      out.response.userHandle = r.userHandle ? toText(r.userHandle) : null;
    }
    return out;
  }

  function start(button) {
    var status = document.getElementById(button.dataset.status);
    var token = button.dataset.csrf;
    var registering = button.dataset.passkey === "register";
    if (!window.PublicKeyCredential) {
      status.textContent = "This browser cannot use passkeys.";
      return;
    }
    button.disabled = true;
    status.textContent = "Follow your browser's prompt to use your passkey.";
    post(button.dataset.options, token).then(function (options) {
      return registering
        ? navigator.credentials.create({publicKey: creationOptions(options)})
        : navigator.credentials.get({publicKey: requestOptions(options)});
    }).then(function (credential) {
      var name = button.dataset.name ? document.getElementById(button.dataset.name).value : "";
      return post(button.dataset.verify, token, {credential: asJSON(credential), name: name});
    }).catch(function (error) {
      status.textContent = error && error.name === "NotAllowedError"
        ? "The passkey prompt was closed or timed out; try again."
        : (error && error.message) || "The passkey did not work; try again.";
      button.disabled = false;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-passkey]").forEach(function (button) {
      button.addEventListener("click", function () { start(button); });
    });
  });
})();
