/*
 * The team visualization follows its conversation live. It listens on that conversation's socket
 * (the one the chat uses, in JSON) and, when a message is stored or a run changes, re-fetches its
 * server-rendered graph (#viz-live answers the HTMX "refresh" trigger). Streamed tokens light up
 * the agent who is speaking at once. A slow poll stays as the fallback while the socket is down.
 */
(function () {
  'use strict';

  function start() {
    var live = document.getElementById('viz-live');
    if (!live || !live.dataset.socket || !window.htmx) return;
    var pending = null;
    var backoff = 1000;
    var speaking = '';

    function refresh() {
      if (pending) return;
      pending = setTimeout(function () {
        pending = null;
        window.htmx.trigger(live, 'refresh');
      }, 150);
    }

    function highlight(source) {
      if (!source || source === speaking) return;
      var node = live.querySelector('.viz-node[data-agent="' + CSS.escape(source) + '"]');
      if (!node) return;
      speaking = source;
      var lit = live.querySelectorAll('.viz-node.active');
      for (var i = 0; i < lit.length; i++) lit[i].classList.remove('active');
      node.classList.add('active');
    }

    live.addEventListener('htmx:afterSwap', function () { speaking = ''; });

    function connect() {
      var scheme = window.location.protocol === 'https:' ? 'wss://' : 'ws://';
      var socket = new WebSocket(scheme + window.location.host + live.dataset.socket);
      socket.onopen = function () {
        backoff = 1000;
        live.classList.add('is-live');
        refresh(); // whatever happened while it was connecting
      };
      socket.onmessage = function (message) {
        var event;
        try { event = JSON.parse(message.data); } catch (err) { return; }
        if (event.type === 'conversation.chunk') {
          highlight(event.source);
        } else if (event.type === 'conversation.message' || event.type === 'conversation.run' ||
                   event.type === 'conversation.message_update') {
          refresh();
        }
      };
      socket.onclose = function (event) {
        live.classList.remove('is-live');
        if (event.code === 4403 || event.code === 4404) return; // not this user's: stop asking
        setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 15000);
      };
    }

    connect();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
