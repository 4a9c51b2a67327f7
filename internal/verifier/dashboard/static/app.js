// Live updates of the Trusted Compute dashboard: when the verifier stores a
// new report, fetch this page again and swap the content of <main>. The
// fetched page is rendered (and escaped) by the server; nothing here builds
// HTML from data.
'use strict';
(function () {
  const main = document.querySelector('main[data-live]');
  const badge = document.getElementById('live');
  if (!main || !window.EventSource) {
    return;
  }
  let busy = false;
  let again = false;

  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const resp = await fetch(window.location.href, {credentials: 'same-origin', cache: 'no-store'});
      if (!resp.ok || resp.redirected) {
        window.location.assign('/login');
        return;
      }
      const doc = new DOMParser().parseFromString(await resp.text(), 'text/html');
      const fresh = doc.querySelector('main[data-live]');
      if (fresh) {
        main.replaceChildren(...Array.from(fresh.childNodes));
        main.dataset.updated = String(Date.now());
      }
    } catch (e) {
      setBadge('update failed', 'bad');
    } finally {
      busy = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }

  function setBadge(text, cls) {
    if (!badge) {
      return;
    }
    badge.hidden = false;
    badge.textContent = text;
    badge.className = 'live ' + cls;
  }

  const events = new EventSource('/events');
  events.addEventListener('open', () => setBadge('live', 'ok'));
  events.addEventListener('error', () => setBadge('reconnecting', 'stale'));
  events.addEventListener('report', refresh);
  events.addEventListener('logout', () => {
    events.close();
    window.location.assign('/login');
  });
})();
