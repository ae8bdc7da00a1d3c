export { CachedAccessToken, Credential, ClientRegistration, WalletContents } from './contents.js';
export { DEFAULT_KDF, type WalletKey } from './envelope.js';
export { initWallet, readWallet, rekeyWallet, transactWallet, unlockWallet, updateWallet, walletPresent } from './file.js';
export { createWalletSession, type WalletSession, type WalletStatus, type WalletEntryView } from './session.js';
