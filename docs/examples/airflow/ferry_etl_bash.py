"""An ETL DAG that runs exactly one image digest per DAG run — with BashOperator.

1. `wait_for_image` blocks until CI has pushed the image for this commit with both platforms.
2. `pin` resolves `etl:latest` to its digest once (the digest goes to XCom).
3. Every ETL task runs `etl@<that digest>`: the same bytes even if `latest` moves mid-run.

Environment (set on the worker): FERRY_REGISTRY (e.g. docker.io, or 127.0.0.1:5000),
FERRY_REPOSITORY (e.g. acme/etl), FERRY_COMMIT (the tag CI pushes), FERRY_ARGS (extra
ferry-registry options, e.g. --plain-http 127.0.0.1:5000), FERRY_OUT (where the example tasks
write what they would run). scripts/test-airflow.sh runs this file with `airflow dags test`.
"""

import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

IMAGE = "$FERRY_REGISTRY/$FERRY_REPOSITORY"

with DAG(
    dag_id="ferry_etl",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["ferry"],
) as dag:
    wait_for_image = BashOperator(
        task_id="wait_for_image",
        bash_command=(
            f"ferry-registry wait {IMAGE}:$FERRY_COMMIT "
            "--platforms linux/amd64,linux/arm64 --timeout 5m --interval 2s $FERRY_ARGS"
        ),
    )
    # BashOperator pushes the last line of stdout to XCom: ferry prints the digest alone.
    pin = BashOperator(
        task_id="pin",
        bash_command=f"ferry-registry digest {IMAGE}:latest $FERRY_ARGS",
        do_xcom_push=True,
    )
    extract = BashOperator(
        task_id="extract",
        bash_command=(
            f"echo \"extract {IMAGE}@{{{{ ti.xcom_pull(task_ids='pin') }}}}\" >> $FERRY_OUT"
        ),
    )
    load = BashOperator(
        task_id="load",
        bash_command=(
            f"echo \"load {IMAGE}@{{{{ ti.xcom_pull(task_ids='pin') }}}}\" >> $FERRY_OUT"
        ),
    )
    wait_for_image >> pin >> extract >> load
