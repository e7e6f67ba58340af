// Infinite scroll: the next page loads when the sentinel below the list comes near the viewport, or on "Load more"
// (keyboard users, and a browser without IntersectionObserver). A page may hold fewer photos than asked for, even
// none, while there are more: the next one follows at once while the sentinel is still near.
import { showError } from "../dom.js";

const NEAR_PX = 400;

// `next()` loads one page and resolves true while there are more. Returns `load`, which the view awaits once to
// show the first page.
export function scroller(session, ticket, { more, sentinel, next }) {
  let loading = false;
  let done = false;
  const near = () => sentinel.isConnected && sentinel.getBoundingClientRect().top < window.innerHeight + NEAR_PX;
  const load = async () => {
    if (loading || done || !session.isCurrent(ticket)) return;
    loading = true;
    more.disabled = true;
    try {
      done = !(await next());
      if (!session.isCurrent(ticket)) return;
      more.hidden = done;
    } catch (error) {
      if (session.isCurrent(ticket)) showError(error);
      return;
    } finally {
      loading = false;
      more.disabled = false;
    }
    if (!done && near()) setTimeout(load, 0);
  };
  more.addEventListener("click", load);
  const observer = new IntersectionObserver(
    (entries) => {
      if (!session.isCurrent(ticket)) {
        observer.disconnect();
        return;
      }
      if (entries.some((entry) => entry.isIntersecting)) load();
    },
    { rootMargin: `${NEAR_PX}px` },
  );
  observer.observe(sentinel);
  return load;
}
