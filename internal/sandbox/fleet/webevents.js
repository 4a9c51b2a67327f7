// Live updates of the Trusted Compute sandbox page, as on the operator's
// dashboard: when the stream says the fleet changed, fetch this page again
// and put its <main> in place of ours. The server renders and escapes the
// page; nothing here builds HTML from data. A swap waits while the user
// types in one of the page's fields.
'use strict';
(() => {
  const live = document.querySelector('main[data-live]');
  if (!live || !('EventSource' in window)) return;
  const badge = document.getElementById('live');
  const show = (text) => {
    if (badge) {
      badge.hidden = false;
      badge.textContent = text;
    }
  };
  const editing = () => {
    const el = document.activeElement;
    return !!el && el.tagName === 'INPUT' && live.contains(el);
  };
  let pending = null;
  const swap = async () => {
    pending = null;
    if (editing()) {
      pending = setTimeout(swap, 1000);
      return;
    }
    try {
      const resp = await fetch(location.href, {credentials: 'same-origin', cache: 'no-store'});
      const fresh = new DOMParser().parseFromString(await resp.text(), 'text/html').querySelector('main[data-live]');
      if (resp.ok && fresh && !editing()) {
        live.replaceChildren(...fresh.childNodes);
        live.dataset.updated = String(Date.now());
      }
    } catch (e) {
      show('update failed');
    }
  };
  const stream = new EventSource('/events');
  stream.onopen = () => show('live');
  stream.onerror = () => show('reconnecting');
  // A burst of changes is one fetch.
  stream.addEventListener('change', () => {
    if (pending === null) pending = setTimeout(swap, 100);
  });
})();
