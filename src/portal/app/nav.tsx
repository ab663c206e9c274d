import type { ReactNode } from 'react';
import { usePortal } from './context';
import { routePath, type Route } from './routes';

const NAV: { route: Route; label: string }[] = [
  { route: { name: 'slots' }, label: 'My slots' },
  { route: { name: 'keys' }, label: 'My keys' },
  { route: { name: 'usage' }, label: 'My usage' },
  { route: { name: 'settings' }, label: 'Settings' },
];

/** The portal's pages, as links (open in a new tab with the usual modifier keys). */
export function NavLinks({ current }: { current: Route }): ReactNode {
  const { navigate } = usePortal();
  return (
    <nav aria-label="Portal" className="nav">
      {NAV.map((item) => (
        <a
          key={item.route.name}
          href={routePath(item.route)}
          data-testid={`nav-${item.route.name}`}
          aria-current={item.route.name === current.name ? 'page' : undefined}
          onClick={(event) => {
            if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
            event.preventDefault();
            navigate(item.route);
          }}
        >
          {item.label}
        </a>
      ))}
    </nav>
  );
}
