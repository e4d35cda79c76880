/** The CLI reads SHOAL_* session variables through the app layer's one helper. */
export { sessionOptionsFromEnv } from '../app/env.js';
