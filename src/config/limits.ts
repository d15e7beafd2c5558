/** The bounds of a cluster's shape: the same for --nodes and --control-planes, config files and node add. */

/** The most nodes a cluster has, control planes included. */
export const MAX_NODES = 16;
/** The most control planes a cluster has (etcd members): seven, as etcd's documentation advises. */
export const MAX_CONTROL_PLANES = 7;
