"""The method: tasks with computed ground truth, actions, checks, the episode loop, engine, judge, filters, replay."""
