import { createContext, useContext } from 'react';
import { useStore } from 'zustand';
import type { StoreApi } from 'zustand/vanilla';
import type { IpcClient } from '../lib/ipc';
import { createAlertsStore, type AlertsState } from './alerts';
import { createCloudStore, type CloudState } from './cloud';
import { createConsolesStore, type ConsolesState } from './consoles';
import { createGatewayStore, type GatewayState } from './gateway';
import { createHostsStore, type HostsState } from './hosts';
import { createSharesStore, type SharesState } from './shares';
import { createSignInStore, type SignInState } from './signin';
import { createSlotsStore, type SlotsState } from './slots';
import { createUiStore, type UiState } from './ui';
import { createUsageStore, type UsageState } from './usage';
import { createUsersStore, type UsersState } from './users';

export interface AppStores {
  ipc: IpcClient;
  hosts: StoreApi<HostsState>;
  slots: StoreApi<SlotsState>;
  consoles: StoreApi<ConsolesState>;
  ui: StoreApi<UiState>;
  users: StoreApi<UsersState>;
  usage: StoreApi<UsageState>;
  gateway: StoreApi<GatewayState>;
  cloud: StoreApi<CloudState>;
  shares: StoreApi<SharesState>;
  signin: StoreApi<SignInState>;
  alerts: StoreApi<AlertsState>;
}

export function createAppStores(ipc: IpcClient): AppStores {
  return {
    ipc,
    hosts: createHostsStore(ipc),
    slots: createSlotsStore(ipc),
    consoles: createConsolesStore(ipc),
    ui: createUiStore(ipc),
    users: createUsersStore(ipc),
    usage: createUsageStore(ipc),
    gateway: createGatewayStore(ipc),
    cloud: createCloudStore(ipc),
    shares: createSharesStore(ipc),
    signin: createSignInStore(ipc),
    alerts: createAlertsStore(ipc),
  };
}

export const StoresContext = createContext<AppStores | null>(null);

export function useStores(): AppStores {
  const stores = useContext(StoresContext);
  if (!stores) throw new Error('useStores outside StoresContext');
  return stores;
}

export const useHosts = <T>(select: (state: HostsState) => T): T => useStore(useStores().hosts, select);
export const useSlots = <T>(select: (state: SlotsState) => T): T => useStore(useStores().slots, select);
export const useConsoles = <T>(select: (state: ConsolesState) => T): T => useStore(useStores().consoles, select);
export const useUi = <T>(select: (state: UiState) => T): T => useStore(useStores().ui, select);
export const useUsers = <T>(select: (state: UsersState) => T): T => useStore(useStores().users, select);
export const useUsage = <T>(select: (state: UsageState) => T): T => useStore(useStores().usage, select);
export const useGateway = <T>(select: (state: GatewayState) => T): T => useStore(useStores().gateway, select);
export const useShares = <T>(select: (state: SharesState) => T): T => useStore(useStores().shares, select);
export const useSignIn = <T>(select: (state: SignInState) => T): T => useStore(useStores().signin, select);
export const useAlerts = <T>(select: (state: AlertsState) => T): T => useStore(useStores().alerts, select);
export const useCloud = <T>(select: (state: CloudState) => T): T => useStore(useStores().cloud, select);
