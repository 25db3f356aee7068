"""Reports made from the accountability log: the data subject access report (AVG art. 15)."""
