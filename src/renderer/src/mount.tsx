import { StrictMode, useEffect } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { StoresContext, useHosts, useUi, type AppStores } from './stores';

/** What `npm run bench -- panel` measures: the first commit that shows the hosts (the app takes input from then). */
function MarkInteractive() {
  const hostsLoaded = useHosts((s) => s.loaded);
  const info = useUi((s) => s.info);
  const ready = hostsLoaded && info !== null;
  useEffect(() => {
    if (ready && performance.getEntriesByName('slotdeck:interactive').length === 0)
      performance.mark('slotdeck:interactive');
  }, [ready]);
  return null;
}

/** Renders the app into the page; main.tsx loads this chunk once it has opened the socket. */
export function mount(stores: AppStores): void {
  createRoot(document.getElementById('root')!).render(
    <StrictMode>
      <StoresContext.Provider value={stores}>
        <App />
        <MarkInteractive />
      </StoresContext.Provider>
    </StrictMode>,
  );
}
