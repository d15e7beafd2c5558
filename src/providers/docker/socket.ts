/** Where the Docker engine listens by default (no client library loads here: detection stays cheap). */
export const DOCKER_DEFAULT_SOCKET = '/var/run/docker.sock';
