"""The same DAG on Kubernetes: every task is a pod; the first pins `etl:latest` to a digest
with `ferry-registry digest --xcom` (KubernetesPodOperator reads /airflow/xcom/return.json),
the ETL pods run exactly that digest. Needs apache-airflow-providers-cncf-kubernetes.
"""

import datetime

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import DAG

FERRY = "ghcr.io/acme/ferry:0.1.0"
ETL = "docker.io/acme/etl"
PINNED = ETL + "@{{ ti.xcom_pull(task_ids='pin')[0]['digest'] }}"

with DAG(dag_id="ferry_etl_k8s", schedule="@hourly", start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:
    wait_for_image = KubernetesPodOperator(
        task_id="wait_for_image",
        name="wait-for-image",
        image=FERRY,
        cmds=["ferry-registry"],
        arguments=["wait", ETL + ":{{ var.value.etl_commit }}", "--platforms", "linux/amd64,linux/arm64", "--timeout", "30m"],
    )
    pin = KubernetesPodOperator(
        task_id="pin",
        name="pin-image",
        image=FERRY,
        cmds=["ferry-registry"],
        arguments=["digest", ETL + ":latest", "--xcom"],
        do_xcom_push=True,
    )
    extract = KubernetesPodOperator(task_id="extract", name="extract", image=PINNED, cmds=["python", "-m", "etl.extract"])
    load = KubernetesPodOperator(task_id="load", name="load", image=PINNED, cmds=["python", "-m", "etl.load"])
    wait_for_image >> pin >> extract >> load
