import { ConfigError } from '../core/errors.js';

/**
 * Below this a bearer key is guessable enough to matter, as for the ops dashboard's token: the
 * server API answers anyone who reaches the gateway, and the key publishes to any channel,
 * disconnects any user and reads presence.
 */
export const MIN_PUBLISH_KEY_LENGTH = 16;

/** The key, or a ConfigError naming `name` (SHOAL_PUBLISH_KEY, or the option publishKey) when it is too short. */
export function checkPublishKey(key: string | undefined, name: string): string | undefined {
  if (key === undefined || key === '') return undefined;
  if (key.length < MIN_PUBLISH_KEY_LENGTH) {
    throw new ConfigError(
      `${name} is ${key.length} characters long; the HTTP server API needs a key of at least ${MIN_PUBLISH_KEY_LENGTH} ` +
        'random characters, because it may publish to any channel, disconnect any user and read presence: ' +
        `set ${name} to one made with \`openssl rand -base64 32\`, or unset it to turn the server API off`,
    );
  }
  return key;
}
