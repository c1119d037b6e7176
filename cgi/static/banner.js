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
