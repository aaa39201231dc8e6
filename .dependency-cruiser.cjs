/**
 * The layer arrows of ARCHITECTURE.md, checked by `npm test` (test/architecture.test.ts runs this). A rule names the
 * arrow it forbids; `npx depcruise src` shows every violation.
 */
const layer = (name) => `^src/${name}/`;
const forbid = (name, from, to, comment) => ({ name, comment, severity: 'error', from: { path: layer(from) }, to: { path: to.map(layer) } });

module.exports = {
  forbidden: [
    forbid('engine-is-pure', 'engine', ['cluster', 'store', 'service', 'sim', 'bot', 'cli', 'agent', 'palette', 'harness'], 'src/engine imports nothing of the other parts: plans, machines and rules only'),
    forbid('cluster-below-service', 'cluster', ['store', 'service', 'sim', 'bot', 'cli', 'palette', 'harness'], 'adapters know the engine and the agent contract, never who drives them'),
    forbid('agent-is-a-leaf', 'agent', ['cluster', 'store', 'service', 'sim', 'bot', 'cli', 'palette', 'harness'], 'src/agent is the node script and its report contract; the Kubernetes adapter (src/cluster/kube/job-manifest.ts) builds the Jobs that run it'),
    forbid('store-below-service', 'store', ['cluster', 'service', 'sim', 'bot', 'cli', 'agent', 'palette', 'harness'], 'the store keeps records; it knows engine types only'),
    forbid('service-below-front-ends', 'service', ['bot', 'cli', 'sim', 'harness'], 'the service is what front ends call; it never calls them'),
    forbid('service-not-wiring', 'service', ['cluster/kube'], 'the service works on a ClusterPort; src/cli builds the KubeCluster from a kubeconfig and the environment'),
    forbid('sim-below-front-ends', 'sim', ['bot', 'cli', 'harness'], 'the simulator drives the service; front ends drive the simulator'),
    forbid('bot-through-service', 'bot', ['cli', 'sim', 'store', 'cluster', 'harness'], 'the bot reaches runs, the store and the clusters through src/service (and uses the engine\'s rules), never the CLI, the simulator, the store or the cluster adapters'),
    forbid('io-is-a-leaf', 'io', ['engine', 'cluster', 'store', 'service', 'sim', 'bot', 'cli', 'agent', 'palette', 'harness'], 'src/io reads user files safely for every layer, so it can depend on none of them'),
    forbid('cli-not-from-bot-internals', 'cli', ['harness'], 'the CLI does not load the test harness'),
    {
      name: 'no-cycles-within-engine',
      severity: 'error',
      from: { path: layer('engine') },
      to: { circular: true },
    },
    {
      name: 'no-cycles-through-agent-or-cluster',
      comment: 'the adapters and the agent contract form no import cycle, among themselves or with each other',
      severity: 'error',
      from: { path: '^src/(agent|cluster)/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(node_modules|test|bench|scripts)/' },
  },
};
