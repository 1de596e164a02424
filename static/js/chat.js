/*
 * Lodestone chat: the little glue htmx and its WebSocket extension (htmx-ext-ws 2) leave to us.
 *
 *  (a) drop a socket fragment whose message seq the page already shows (htmx:wsBeforeMessage is
 *      cancelable), and a run notice already shown;
 *  (b) (re)connect with ?after=<highest seq on the page>, so a reconnecting socket replays only
 *      what was missed (htmx-ext-ws calls htmx.createWebSocket(url) for every connect and retry);
 *  (c) keep the thread scrolled to the bottom while the reader is there;
 *  (d) clear and focus the composer after a successful post; Enter sends, Shift+Enter breaks a line.
 *
 * Everything else (swaps, out-of-band updates, the Stop button) is plain htmx in the templates.
 */
(function () {
  'use strict';

  var NEAR_BOTTOM_PX = 160;

  /** A small handle for debugging and the browser tests: the current socket and the seq it resumes from. */
  var LodestoneChat = (window.LodestoneChat = { socket: null, highestSeq: highestSeq });

  function chat() { return document.getElementById('main'); }
  function scroller() { return document.getElementById('chat-scroll'); }

  /** The highest message seq the page holds (rendered elements, or what the server said it rendered). */
  function highestSeq() {
    var max = 0;
    var root = chat();
    if (root && root.dataset.lastSeq) max = parseInt(root.dataset.lastSeq, 10) || 0;
    var nodes = document.querySelectorAll('[data-seq]');
    for (var i = 0; i < nodes.length; i++) {
      var seq = parseInt(nodes[i].getAttribute('data-seq'), 10);
      if (seq > max) max = seq;
    }
    return max;
  }

  function isNearBottom() {
    var el = scroller();
    return !el || el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX;
  }

  function scrollToBottom() {
    var el = scroller();
    if (el) el.scrollTop = el.scrollHeight;
  }

  // (b) Every connect and every reconnect asks for what came after the newest message on the page.
  htmx.createWebSocket = function (url) {
    var target = new URL(url, window.location.href);
    if (target.pathname.indexOf('/ws/conversations/') === 0) {
      target.searchParams.set('after', String(highestSeq()));
    }
    var socket = new WebSocket(target.toString(), []);
    socket.binaryType = htmx.config.wsBinaryType || 'blob';
    LodestoneChat.socket = socket;
    return socket;
  };

  var stickToBottom = true;

  // (a) Deduplicate by seq before htmx swaps anything in.
  document.addEventListener('htmx:wsBeforeMessage', function (evt) {
    stickToBottom = isNearBottom();
    var html = evt.detail.message;
    if (typeof html !== 'string' || (html.indexOf('data-seq') === -1 && html.indexOf('data-notice') === -1)) return;
    if (html.indexOf('data-update="1"') !== -1) return; // a shown message changed: swapped by id
    var template = document.createElement('template');
    template.innerHTML = html;
    var seen = highestSeq();
    var seqNodes = template.content.querySelectorAll('[data-seq]');
    for (var i = 0; i < seqNodes.length; i++) {
      var seq = parseInt(seqNodes[i].getAttribute('data-seq'), 10);
      if (seq <= seen || document.querySelector('[data-seq="' + seq + '"]')) {
        evt.preventDefault();
        return;
      }
    }
    var notices = template.content.querySelectorAll('[data-notice]');
    for (var j = 0; j < notices.length; j++) {
      if (document.querySelector('[data-notice="' + notices[j].getAttribute('data-notice') + '"]')) {
        evt.preventDefault();
        return;
      }
    }
  });

  document.addEventListener('htmx:wsAfterMessage', function () {
    var root = chat();
    if (root) root.dataset.lastSeq = String(highestSeq());
    if (stickToBottom) scrollToBottom();
  });

  // Connection state, for the little "live" dot in the header.
  document.addEventListener('htmx:wsOpen', function () {
    var root = chat();
    if (root) { root.classList.add('is-live'); root.classList.remove('is-offline'); }
  });
  document.addEventListener('htmx:wsClose', function () {
    var root = chat();
    if (root) { root.classList.remove('is-live'); root.classList.add('is-offline'); }
  });

  // (d) After a successful post the server sends back a fresh composer: make sure it is empty and focused.
  document.addEventListener('htmx:afterRequest', function (evt) {
    var config = evt.detail.requestConfig;
    var source = config && config.elt;
    if (!source || source.id !== 'composer') return;
    var status = evt.detail.xhr ? evt.detail.xhr.status : 0;
    var textarea = document.querySelector('#composer textarea');
    if (!textarea) return;
    if (status >= 200 && status < 300) textarea.value = '';
    scrollToBottom(); // the reader's own message lands at the bottom; an error message may have grown the footer
    textarea.focus();
  });

  // Enter sends (unless composing with an IME or holding Shift).
  document.addEventListener('keydown', function (evt) {
    var target = evt.target;
    if (!(target instanceof HTMLTextAreaElement) || !target.closest('#composer')) return;
    if (evt.key === 'Enter' && !evt.shiftKey && !evt.isComposing) {
      evt.preventDefault();
      var form = target.closest('form');
      if (form && !form.classList.contains('htmx-request')) form.requestSubmit();
    }
  });

  // A <select data-autosubmit> submits its form when changed (an onchange attribute would need an
  // inline-script exception in the Content-Security-Policy).
  document.addEventListener('change', function (event) {
    var target = event.target;
    if (target && target.matches && target.matches('select[data-autosubmit]') && target.form) {
      target.form.requestSubmit();
    }
  });

  // Times in the reader's own timezone, for the page and for every fragment htmx adds.
  htmx.onLoad(function (content) {
    var times = (content.querySelectorAll ? content.querySelectorAll('time[datetime]') : []);
    for (var i = 0; i < times.length; i++) {
      var when = new Date(times[i].getAttribute('datetime'));
      if (!isNaN(when.getTime())) {
        times[i].textContent = when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
        times[i].title = when.toLocaleString();
      }
    }
    // (c) A freshly rendered chat starts at its newest message.
    if (content === document.body || (content.id === 'main' && scroller())) {
      scrollToBottom();
      var nav = document.getElementById('nav-toggle');
      if (nav) nav.checked = false;
    }
  });
})();
