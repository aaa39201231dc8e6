import { it } from 'vitest';
import { doctor, formatDoctorReport } from '../../src/service/doctor.ts';
import { sandboxTarget } from '../helpers/sandbox-target.ts';
const names = (process.env.DBG ?? 'healthy').split(',');
for (const n of names) it(n, { timeout: 60_000 }, async () => {
  const b = await sandboxTarget(n === 'demo' ? 'demo.yaml' : `palette-managed/${n}.yaml`);
  const r = await b.time.run(doctor(b.target));
  console.log(formatDoctorReport(r));
  await b.close();
});
