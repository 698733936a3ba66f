/** kvmtrace's version, as written into bundles and reports. */
export const VERSION = '0.1.0';
