// webmailkey: keeps the key banner's "N min left" true while a page stays open.
// Pages work without it: the server writes the time left into every page it sends.
// The only script of the site (CSP script-src 'self', on pages with the banner).
(function () {
  'use strict';
  var states = document.querySelectorAll('.key-state[data-seconds-left]');
  if (!states.length) return;
  var start = Date.now();
  function label(seconds) {
    if (seconds <= 0) return 'time is up: the key is locked';
    if (seconds < 60) return 'less than a minute left';
    return Math.floor(seconds / 60) + ' min left';
  }
  function tick() {
    var elapsed = Math.floor((Date.now() - start) / 1000);
    for (var i = 0; i < states.length; i += 1) {
      var left = Number(states[i].getAttribute('data-seconds-left')) - elapsed;
      var text = states[i].querySelector('.time-left');
      if (text) text.textContent = label(left);
      if (left <= 0) states[i].classList.add('expired');
    }
  }
  setInterval(tick, 5000);
})();

// A decrypted view reached by a form POST gets its own address in the history
// (GET /decrypt?id=…&folder=…), so that reload and the back button open it again
// while the grant lives instead of asking to send the form again.
(function () {
  'use strict';
  var self = document.querySelector('a[data-address]');
  if (!self || !window.history || !history.replaceState) return;
  var href = self.getAttribute('href');
  if (location.pathname + location.search !== href) history.replaceState(null, '', href);
})();
