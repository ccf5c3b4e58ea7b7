"""Workflows: dependencies, failure policies, completions, spawning."""

from __future__ import annotations

import threading
import unittest

from helpers import BackendCase, for_each_backend

import asynctask


@for_each_backend
class WorkflowTest(BackendCase):
    def run_one(self, node_type: str, fail: str | None = None, permanent: bool = True) -> asynctask.Job:
        jobs = self.store.poll("wf", timeout=5)
        self.assertEqual(len(jobs), 1, f"expected a due {node_type} job")
        job = jobs[0]
        self.assertEqual(job.type, node_type)
        if fail is None:
            job.ack(node_type.encode())
        else:
            job.fail(fail, permanent=permanent)
        return job

    def test_children_wait_for_their_parents(self) -> None:
        wf = self.store.workflow()
        wf.add("fetch", "fetch", b"url", queue="wf")
        wf.add("report", "report", queue="wf", after=["parse", "fetch"])  # parse is added later
        wf.add("parse", "parse", queue="wf", after=["fetch"])
        self.assertEqual(len(wf), 3)
        wid = wf.submit()
        ids = wf.job_ids()
        self.assertEqual(set(ids), {"fetch", "parse", "report"})
        self.assertEqual(wf.job_id("parse"), ids["parse"])
        self.assertIsNone(wf.job_id("nope"))
        report = self.store.get(ids["report"])
        self.assertEqual((report.state, report.workflow_id, report.node), ("waiting", wid, "report"))
        self.assertEqual(set(report.parents), {ids["fetch"], ids["parse"]})
        self.assertEqual(report.parents_left, 2)
        st = self.store.workflow_status(wid)
        self.assertEqual((st.done, st.failed, st.counts["waiting"], st.counts["ready"]), (False, False, 2, 1))
        self.run_one("fetch")
        self.run_one("parse")
        self.run_one("report")
        st = self.store.workflow_status(wid)
        self.assertEqual((st.done, st.failed, st.counts["succeeded"]), (True, False, 3))
        self.assertEqual([j.node for j in self.store.workflow_jobs(wid, page_size=2)],
                         [n for n, _ in sorted(ids.items(), key=lambda kv: kv[1])])
        wf.close()
        with self.assertRaises(asynctask.Misuse):
            wf.job_id("fetch")

    def test_parent_failure_policies(self) -> None:
        with self.store.workflow() as wf:
            wf.add("root", "root", queue="wf")
            wf.add("c", "c", queue="wf", after=["root"])
            wf.add("r", "r", queue="wf", after=["root"], on_parent_failure="run")
            wf.add("d", "d", queue="wf", after=["root"], on_parent_failure="dead")
            wf.add_completion("done", "done", queue="wf")
            wid = wf.submit()
            ids = wf.job_ids()
        self.run_one("root", fail="broken")
        self.assertEqual(self.store.get(ids["c"]).state, "cancelled")
        self.assertEqual(self.store.get(ids["d"]).state, "dead")
        self.assertEqual(self.store.get(ids["d"]).parent_policy, "dead")
        self.run_one("r")
        self.run_one("done")
        st = self.store.workflow_status(wid)
        self.assertTrue(st.done and st.failed)
        self.assertEqual(self.store.requeue(ids["d"]), 1)
        self.run_one("d")

    def test_dependency_on_an_existing_job(self) -> None:
        first = self.store.enqueue("first", queue="wf")
        wf = self.store.workflow().add("after", "after", queue="wf", after_jobs=[first])
        wf.submit()
        self.assertEqual(self.store.get(wf.job_id("after")).state, "waiting")
        self.run_one("first")
        self.run_one("after")

    def test_invalid_graphs_are_refused(self) -> None:
        wf = self.store.workflow()
        wf.add("a", "t", after=["b"]).add("b", "t", after=["a"])
        with self.assertRaises(asynctask.Cycle):
            wf.submit()
        self.assertEqual(list(self.store.list()), [])
        wf2 = self.store.workflow().add("a", "t")
        with self.assertRaises(asynctask.Exists):
            wf2.add("a", "t")
        with self.assertRaises(asynctask.InvalidArgument):
            wf2.depend("a", "a")
        with self.assertRaises(asynctask.NotFound):
            self.store.workflow().add("x", "t", after=["ghost"]).submit()
        with self.assertRaises(asynctask.InvalidArgument):
            self.store.workflow().submit()  # empty
        with self.assertRaises(ValueError):
            self.store.workflow().add("x", "t", on_parent_failure="ignore")
        with self.assertRaises(asynctask.NotFound):
            self.store.workflow_status("0" * 26)

    def test_cancel_workflow_cancels_unfinished_jobs(self) -> None:
        wf = self.store.workflow().add("a", "t", queue="wf").add("b", "t", queue="wf", after=["a"])
        wid = wf.submit()
        self.assertEqual(self.store.cancel_workflow(wid), 2)
        self.assertEqual(self.store.workflow_status(wid).counts["cancelled"], 2)

    def test_a_polled_job_spawns_nodes_that_wait_for_it(self) -> None:
        wid = self.store.workflow().add("split", "split", queue="wf").submit()
        job = self.store.poll("wf", timeout=5)[0]
        children = self.store.workflow()
        for i in range(3):
            children.add(f"part{i}", "part", str(i), queue="wf")
        ids = job.spawn(children)
        self.assertEqual(len(ids), 3)
        part = self.store.get(ids["part0"])
        self.assertEqual((part.workflow_id, part.state, part.parents), (wid, "waiting", (job.id,)))
        job.ack()
        for _ in range(3):
            self.run_one("part")
        self.assertTrue(self.store.workflow_status(wid).done)

    def test_a_worker_handler_spawns_through_its_context(self) -> None:
        w = self.store.worker(queues=["wf"])
        spawned = {}

        @w.handler("split")
        def split(ctx: asynctask.JobContext) -> None:
            with asynctask.Workflow() as wf:
                wf.add("child", "child", ctx.payload, queue="wf")
                spawned.update(ctx.spawn(wf))

        w.add_handler("child", lambda ctx: b"child of " + ctx.payload)
        jid = self.store.enqueue("split", b"x", queue="wf")
        t = threading.Thread(target=w.run)
        t.start()
        try:
            self.wait_for(lambda: spawned and self.store.get(spawned["child"]).state == "succeeded",
                          what="the spawned child")
        finally:
            w.stop()
            t.join(10)
        child = self.store.get(spawned["child"])
        self.assertEqual(child.result, b"child of x")
        self.assertEqual(child.workflow_id, self.store.get(jid).workflow_id or jid)

    def test_spawn_with_a_stale_token_adds_nothing(self) -> None:
        self.store.enqueue("split", queue="wf")
        job = self.store.poll("wf", timeout=5)[0]
        job.release()
        with self.assertRaises(asynctask.Stale):
            job.spawn(self.store.workflow().add("x", "t"))
        self.assertEqual(len(list(self.store.list())), 1)


if __name__ == "__main__":
    unittest.main()
