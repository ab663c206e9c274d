import '@xterm/xterm/css/xterm.css';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { defaultIpcClient } from './lib/ipc';
import { createAppStores, StoresContext } from './stores';
import './styles.css';

const stores = createAppStores(defaultIpcClient());

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <StoresContext.Provider value={stores}>
      <App />
    </StoresContext.Provider>
  </StrictMode>,
);
