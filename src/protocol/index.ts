/** The wire protocol shared by gateways, publishers and the browser SDK. Imports nothing from Node. */
export * from './channels.js';
export * from './messages.js';
export * from './requests.js';
