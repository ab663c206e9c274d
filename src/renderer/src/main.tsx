import '@xterm/xterm/css/xterm.css';
import { defaultIpcClient } from './lib/ipc';
import { startApp } from './startup';
import { createAppStores } from './stores';
import './styles.css';

// The first screen waits on the network more than on code: the socket's sign-in and the answers it shows. So this
// entry is small (the IPC client and the stores): it opens the socket and asks for the first screen's data at once,
// while the bulk of the app (react-dom, the views) downloads and compiles in a chunk of its own.
const stores = createAppStores(defaultIpcClient());
void startApp(stores);
void import('./mount').then(({ mount }) => mount(stores));
